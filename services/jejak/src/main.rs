//! The `jejak` binary: parses the command line, sets up logging, and hands
//! over to the library crates (the server's `run`, the client's commands,
//! the engine's offline tools).

mod args;
mod store;

use anyhow::Context;
use args::{Cli, Command, Direction, LogFormat, TokenAction};
use clap::Parser;
use jejak_client::cli;
use jejak_server::{Backend, NatsBackend, ServerConfig};

/// mimalloc: the write path and the projector allocate many small buffers
/// per event; the system allocator spent over a tenth of the server's time there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    // Its exit status says how a bundle failed.
    if let Command::VerifyBundle {
        file,
        log_key,
        witnesses,
        quorum,
    } = &cli.command
    {
        return cli::verify_bundle(file, log_key, witnesses, *quorum);
    }
    match run(cli.command).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A refusal from the server reads as its code and message.
            match e.downcast_ref::<tonic::Status>() {
                Some(s) => eprintln!("error: {:?}: {}", s.code(), s.message()),
                None => eprintln!("error: {e:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs a server with `backend` until a signal asks it to stop.
async fn serve(listen: &str, config: ServerConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    jejak_server::run(config, listener, jejak_server::shutdown_signal()).await
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            data_dir,
            listen,
            demo,
            limits,
            requests,
            nats,
            max_lag,
            access,
            tlog,
        } => {
            let tlog = tlog.config()?;
            let mut access = access.access(requests.request_timeout);
            access
                .admin_token_file
                .get_or_insert_with(|| data_dir.join("admin.token"));
            let backend = match nats.url.clone() {
                None => Backend::Embedded { data_dir, demo },
                Some(url) => Backend::Nats(NatsBackend {
                    nats: nats.config(url, "jejak serve"),
                    connect_wait: nats.nats_connect_wait,
                    capture: true,
                    projector: Some(data_dir),
                    demo,
                    max_lag,
                }),
            };
            let limits = limits.limits();
            serve(
                &listen,
                ServerConfig {
                    backend,
                    limits,
                    access,
                    tlog,
                },
            )
            .await
        }
        Command::BootstrapToken { out, nats } => {
            let config = nats.config(nats.require_url()?, "jejak bootstrap-token");
            let clock = jejak_domain::system_clock();
            if !jejak_server::bootstrap_token(config, nats.nats_connect_wait, &out, clock).await? {
                eprintln!("an active administrator token exists already: nothing issued");
            }
            Ok(())
        }
        Command::Capture {
            listen,
            requests,
            nats,
            access,
        } => {
            let backend = Backend::Nats(NatsBackend {
                nats: nats.config(nats.require_url()?, "jejak capture"),
                connect_wait: nats.nats_connect_wait,
                capture: true,
                projector: None,
                demo: false,
                max_lag: 0,
            });
            let (limits, access) = (Default::default(), access.access(requests.request_timeout));
            let tlog = Default::default();
            serve(
                &listen,
                ServerConfig {
                    backend,
                    limits,
                    access,
                    tlog,
                },
            )
            .await
        }
        Command::Projector {
            data_dir,
            listen,
            limits,
            requests,
            nats,
            max_lag,
            access,
            tlog,
        } => {
            let mut tlog = tlog.config()?;
            // A projector signs only when given a key: one signer, the others follow.
            tlog.sign &= tlog.key.is_some();
            let backend = Backend::Nats(NatsBackend {
                nats: nats.config(nats.require_url()?, "jejak projector"),
                connect_wait: nats.nats_connect_wait,
                capture: false,
                projector: Some(data_dir),
                demo: false,
                max_lag,
            });
            let (limits, access) = (limits.limits(), access.access(requests.request_timeout));
            serve(
                &listen,
                ServerConfig {
                    backend,
                    limits,
                    access,
                    tlog,
                },
            )
            .await
        }
        Command::Token { action } => match action {
            TokenAction::Create {
                role,
                facilities,
                party,
                expires_in,
                label,
                command_id,
                qr,
                server,
            } => {
                let t = cli::NewToken {
                    role,
                    facilities,
                    party,
                    expires_in,
                    label,
                    command_id,
                    qr,
                };
                cli::token_create(&server.target(), server.json, t).await
            }
            TokenAction::List { all, server } => cli::token_list(&server.target(), server.json, all).await,
            TokenAction::Revoke {
                token_id,
                reason,
                server,
            } => cli::token_revoke(&server.target(), server.json, token_id, reason).await,
        },
        Command::Import { file, proceed, server } => cli::import(&server.target(), &file, proceed).await,
        Command::Trace { direction } => {
            let (target, serial, max_depth, server, backward) = match direction {
                Direction::Back {
                    target,
                    serial,
                    max_depth,
                    server,
                } => (target, serial, max_depth, server, true),
                Direction::Forward {
                    target,
                    serial,
                    max_depth,
                    server,
                } => (target, serial, max_depth, server, false),
            };
            cli::trace(&server.target(), server.json, &target, serial, max_depth, backward).await
        }
        Command::Origin { target, serial, server } => cli::origin(&server.target(), server.json, &target, serial).await,
        Command::History { lot, as_of, server } => {
            cli::history(&server.target(), server.json, lot, as_of.as_deref()).await
        }
        Command::Lot { lot, server } => cli::lot(&server.target(), server.json, lot).await,
        Command::Labels {
            lot,
            out,
            public_base,
            server,
        } => cli::labels(&server.target(), lot, &out, public_base).await,
        Command::Lookup { uri, server } => cli::lookup(&server.target(), server.json, uri).await,
        Command::Status { server } => cli::status(&server.target(), server.json).await,
        Command::Rebuild { data_dir } => store::rebuild(&data_dir).await,
        Command::Backup { dir, server } => store::backup(&server.target(), &dir).await,
        Command::Restore { dir, data_dir } => store::restore(&dir, &data_dir).await,
        Command::Bundle { what: w, server } => {
            cli::bundle(&server.target(), &w.target, w.serial, w.out.as_deref()).await
        }
        Command::VerifyBundle { .. } => Ok(()),
        Command::Epcis { what } => what.run().await,
        Command::RecallReport { what: w, server } => {
            cli::recall_report(&server.target(), server.json, &w.target, w.serial, w.out.as_deref()).await
        }
        Command::Eudr { lot, out, server } => {
            let n = jejak_client::filings::eudr(&server.target(), &lot, &out).await?;
            println!("wrote {n} plots to {}", out.display());
            Ok(())
        }
        Command::Report { what } => what.run().await,
        Command::Webhook { action } => action.run().await,
        Command::Alerts { after, server } => jejak_client::alerts::watch(&server.target(), after).await,
        Command::Witness {
            key,
            name,
            log_keys,
            listen,
            state,
        } => jejak_server::witness::serve(key, name, &log_keys, state, &listen).await,
        Command::LogKey {
            data_dir,
            log_key,
            log_origin,
            vkey_out,
        } => jejak_server::tlog::print_log_key(&data_dir, log_key, log_origin.as_deref(), vkey_out.as_deref()),
        Command::Export { out, from, server } => {
            let n = jejak_client::export::export(&server.target(), from, &out).await?;
            println!("wrote {n} envelopes to {}", out.display());
            Ok(())
        }
        Command::Verify { export: Some(file), .. } => {
            let c = jejak_client::export::verify_export(&file)?;
            println!(
                "chains: {} envelopes in {} chains verified ({} begin before the export)",
                c.envelopes, c.chains, c.continued
            );
            Ok(())
        }
        Command::Verify { data_dir, .. } => {
            let v = jejak_engine::offline::verify(&data_dir).await?;
            match v.chained {
                Some(n) => println!("chains: {n} events verified"),
                None => println!("chains: no event log here (a projector's store; the stream holds the log)"),
            }
            println!("projection position: {}", v.position);
            println!("projection digest: {}", hex::encode(v.digest));
            Ok(())
        }
    }
}
