//! The data-directory commands: `jejak rebuild`, `jejak backup` and
//! `jejak restore`.

use std::path::Path;

use anyhow::Context;

/// `jejak rebuild`, with a progress bar.
pub(crate) async fn rebuild(data_dir: &std::path::Path) -> anyhow::Result<()> {
    // What a rebuild writes is the server's data: owner-only.
    jejak_server::files::owner_only_from_now_on();
    let bar = indicatif::ProgressBar::new(jejak_engine::offline::log_end(data_dir)?);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} rebuilding [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let b = bar.clone();
    let position = jejak_engine::offline::rebuild(data_dir, Box::new(move |n| b.inc(n))).await?;
    bar.finish();
    println!(
        "projection rebuilt to log position {position} in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// `jejak backup DIR`.
pub(crate) async fn backup(target: &jejak_client::Target, dir: &Path) -> anyhow::Result<()> {
    let m = jejak_client::backup::backup(target, dir).await?;
    println!(
        "backed up log positions 1 to {} ({} chains, checkpoint of {} events) into {}",
        m.position,
        m.chains,
        m.checkpoint_size.unwrap_or(0),
        dir.display()
    );
    println!(
        "{} holds the transparency log's signing key: keep it as safe as the data directory",
        dir.join("log.key").display()
    );
    Ok(())
}

/// `jejak restore DIR --data-dir D`.
pub(crate) async fn restore(dir: &Path, data_dir: &Path) -> anyhow::Result<()> {
    jejak_server::files::owner_only_from_now_on();
    let opened = jejak_client::backup::open(dir)?;
    let key_path = data_dir.join("log.key");
    anyhow::ensure!(
        !key_path.exists(),
        "{} exists: restore into a new data directory",
        key_path.display()
    );
    let signer = jejak_verify::note::Signer::parse(opened.log_key.trim_end())
        .with_context(|| format!("{} is not a log key", dir.join("log.key").display()))?;
    let backup = jejak_engine::offline::Backup {
        envelopes: opened.envelopes()?,
        checkpoint: opened.checkpoint.clone().map(|note| (note, signer.verifier())),
    };
    let started = std::time::Instant::now();
    let restored = jejak_engine::offline::restore(data_dir, backup).await?;
    jejak_server::tlog::write_secret(&key_path, opened.log_key.trim_end())?;
    jejak_server::files::make_owner_only(data_dir)
        .with_context(|| format!("make {} owner-only", data_dir.display()))?;
    println!(
        "restored log positions 1 to {} into {} in {:.1?}: every chain verified, projection made from the log",
        restored.position,
        data_dir.display(),
        started.elapsed()
    );
    match restored.checkpoint_size {
        Some(n) => println!(
            "checkpoint of {n} events: signed by {}, root reproduced",
            signer.verifier().vkey()
        ),
        None => println!("the backup has no checkpoint (none was published before it)"),
    }
    Ok(())
}
