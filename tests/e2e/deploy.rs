//! What the deployment files rely on: metrics and health for Prometheus and
//! probes on a private listener without a token, the client's address
//! behind a trusted reverse proxy, and a request id on every answer.

use std::time::Duration;

use jejak_testkit::{http_request, Server, ServerOptions};

/// The address the server printed for its private metrics listener.
async fn metrics_address(server: &Server) -> String {
    jejak_testkit::wait_until(std::time::Instant::now() + Duration::from_secs(10), || async {
        Ok(server
            .stdout_lines()
            .into_iter()
            .find_map(|l| l.strip_prefix("jejak metrics on http://").map(str::to_string))
            .map(|a| a.trim_end_matches("/metrics").to_string()))
    })
    .await
    .expect("the server prints its metrics address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_need_no_token_on_the_private_listener_and_one_on_the_public_port() {
    let server = Server::start(ServerOptions {
        demo: true,
        extra_args: vec!["--metrics-listen".into(), "127.0.0.1:0".into()],
        ..Default::default()
    })
    .expect("start a server with a metrics listener");
    let private = metrics_address(&server).await;
    let scraped = http_request(&private, "GET", "/metrics", &[], b"")
        .await
        .expect("scrape");
    assert_eq!(scraped.status, 200, "{}", scraped.text());
    assert!(
        scraped
            .header("content-type")
            .is_some_and(|t| t.contains("openmetrics")),
        "{:?}",
        scraped.headers
    );
    for metric in ["jejak_log_verified", "jejak_checkpoint_tree_size"] {
        assert!(scraped.text().contains(metric), "{metric} missing from the scrape");
    }
    let health = http_request(&private, "GET", "/healthz", &[], b"")
        .await
        .expect("health");
    assert_eq!((health.status, health.text().trim()), (200, "ok"));
    // Nothing else is served there: the API stays on the public port.
    let other = http_request(&private, "GET", "/01/08997001001018", &[], b"")
        .await
        .expect("GET");
    assert_eq!(other.status, 404);
    // The public port still wants an administrator for its own /metrics.
    let public = http_request(server.authority(), "GET", "/metrics", &[], b"")
        .await
        .expect("GET");
    assert_eq!(public.status, 401, "{}", public.text());
}

async fn public_statuses(server: &Server, forwarded_for: impl Fn(usize) -> String, n: usize) -> (usize, usize) {
    let (mut ok, mut limited) = (0, 0);
    for i in 0..n {
        let xff = forwarded_for(i);
        let reply = http_request(
            server.authority(),
            "GET",
            "/.well-known/gs1resolver",
            &[("X-Forwarded-For", &xff)],
            b"",
        )
        .await
        .expect("GET");
        match reply.status {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("HTTP {other}: {}", reply.text()),
        }
    }
    (ok, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_public_limit_keys_on_the_forwarded_client() {
    let start = |trusted: bool| {
        let mut extra_args = Vec::new();
        if trusted {
            extra_args = vec!["--trusted-proxy".into(), "127.0.0.0/8".into()];
        }
        Server::start(ServerOptions {
            demo: true,
            rate_limits: Some((2000.0, 5.0)),
            extra_args,
            ..Default::default()
        })
        .expect("start a server")
    };
    let behind = start(true);
    // Forty clients (IPv4, and IPv6 in different /64s) behind the proxy on
    // loopback: each has a bucket of its own.
    let (ok, limited) = public_statuses(
        &behind,
        |i| match i % 2 {
            0 => format!("198.51.100.{i}"),
            _ => format!("2001:db8:{i:x}::1"),
        },
        40,
    )
    .await;
    assert_eq!((ok, limited), (40, 0));
    // One client forwarded forty times, with a spoofed hop to its left and
    // addresses in one IPv6 /64: its bucket runs out.
    let (_, limited) = public_statuses(&behind, |_| "6.6.6.6, 203.0.113.7".into(), 40).await;
    assert!(limited >= 20, "one forwarded client is limited: {limited} of 40");
    let (_, limited) = public_statuses(&behind, |i| format!("2001:db8:77::{i:x}"), 40).await;
    assert!(limited >= 20, "one IPv6 /64 is one client: {limited} of 40");
    // Without --trusted-proxy the header is not believed: every request
    // is loopback's, whatever it claims.
    let direct = start(false);
    let (_, limited) = public_statuses(&direct, |i| format!("198.51.100.{i}"), 40).await;
    assert!(limited >= 20, "a forged header buys nothing: {limited} of 40");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id_and_a_callers_own_is_kept() {
    let server = Server::start(ServerOptions {
        demo: true,
        ..Default::default()
    })
    .expect("start a server");
    let mut ids = std::collections::HashSet::new();
    for path in ["/.well-known/gs1resolver", "/metrics", "/no/such/path"] {
        let reply = http_request(server.authority(), "GET", path, &[], b"")
            .await
            .expect("GET");
        let id = reply
            .header("x-request-id")
            .unwrap_or_else(|| panic!("{path}: no x-request-id"));
        assert!(ids.insert(id.to_string()), "{path}: id {id} given twice");
    }
    let reply = http_request(
        server.authority(),
        "GET",
        "/.well-known/gs1resolver",
        &[("X-Request-Id", "lb-7f3a.42")],
        b"",
    )
    .await
    .expect("GET");
    assert_eq!(reply.header("x-request-id"), Some("lb-7f3a.42"));
    // Something that is not a plain token is replaced.
    let reply = http_request(
        server.authority(),
        "GET",
        "/.well-known/gs1resolver",
        &[("X-Request-Id", "a b<script>")],
        b"",
    )
    .await
    .expect("GET");
    assert_ne!(reply.header("x-request-id"), Some("a b<script>"));
    // gRPC answers carry it too.
    let mut trace = server.trace().await.expect("trace client");
    let status = trace
        .get_status(jejak_proto::v1::GetStatusRequest::default())
        .await
        .expect("status");
    assert!(status.metadata().get("x-request-id").is_some());
}

/// One service of a deployment file: its name, how many run, its command
/// line, environment and volumes as written.
#[derive(Debug, Clone)]
struct Service {
    name: String,
    replicas: usize,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Where it mounts which volume: (mount path, volume), the volume named
    /// so that services sharing it share the name (`secret/<name>` for a
    /// Kubernetes Secret, `<workload>/<name>` for a pod's own volume).
    mounts: Vec<(String, String)>,
}

impl Service {
    /// An absolute path of this service on the test machine: under the
    /// scratch directory's copy of the volume mounted deepest above it.
    fn local(&self, root: &std::path::Path, path: &str) -> std::path::PathBuf {
        let (mount, volume) = self
            .mounts
            .iter()
            .filter(|(m, _)| path == m || path.starts_with(&format!("{}/", m.trim_end_matches('/'))))
            .max_by_key(|(m, _)| m.len())
            .unwrap_or_else(|| panic!("{}: {path} is on none of its volumes {:?}", self.name, self.mounts));
        let dir = root.join("volumes").join(volume);
        std::fs::create_dir_all(&dir).expect("a volume's directory");
        dir.join(path[mount.len()..].trim_start_matches('/'))
    }
}

fn deploy_file(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn strings(v: &serde_norway::Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The jejak services of `deploy/compose.yaml` (anchors merged), after
/// checking that its NATS nodes run `deploy/nats/cluster.conf`.
fn compose_services() -> Vec<Service> {
    let mut doc: serde_norway::Value =
        serde_norway::from_str(&deploy_file("compose.yaml")).expect("compose.yaml parses");
    doc.apply_merge().expect("compose.yaml's anchors merge");
    let services = doc["services"].as_mapping().expect("services");
    let mut out = Vec::new();
    for (name, svc) in services {
        let name = name.as_str().expect("a service name").to_string();
        let image = svc["image"].as_str().unwrap_or_default();
        if image.starts_with("nats:") {
            assert_eq!(
                strings(&svc["command"]),
                ["nats-server", "-c", "/etc/nats/cluster.conf"],
                "{name}"
            );
            assert!(
                strings(&svc["volumes"]).contains(&"./nats/cluster.conf:/etc/nats/cluster.conf:ro".to_string()),
                "{name} mounts deploy/nats/cluster.conf"
            );
            continue;
        }
        assert_eq!(image, "jejak:latest", "{name}");
        let env = svc["environment"]
            .as_mapping()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            serde_norway::Value::String(s) => s.clone(),
                            other => serde_norway::to_string(other).expect("a value").trim().to_string(),
                        };
                        (k.as_str().expect("a variable").to_string(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Named volumes (not files of the repository).
        let mounts = strings(&svc["volumes"])
            .iter()
            .filter(|v| !v.starts_with('.') && !v.starts_with('/'))
            .filter_map(|v| {
                let mut parts = v.split(':');
                Some((parts.nth(1)?.to_string(), format!("compose/{}", v.split(':').next()?)))
            })
            .collect();
        out.push(Service {
            name,
            replicas: 1,
            args: strings(&svc["command"]),
            env,
            mounts,
        });
    }
    out
}

/// The jejak workloads of `deploy/k8s/` (Deployments, StatefulSets, Jobs),
/// after checking what every pod must have.
fn kubernetes_services() -> (Vec<Service>, Vec<Secret>) {
    let mut out = Vec::new();
    let mut secrets = Vec::new();
    for file in [
        "k8s/nats.yaml",
        "k8s/capture.yaml",
        "k8s/projector.yaml",
        "k8s/bootstrap.yaml",
    ] {
        for doc in serde_norway::Deserializer::from_str(&deploy_file(file)) {
            let doc = serde_norway::Value::deserialize(doc).expect("a manifest parses");
            let kind = doc["kind"].as_str().unwrap_or_default();
            if !matches!(kind, "Deployment" | "StatefulSet" | "Job") {
                continue;
            }
            let name = doc["metadata"]["name"].as_str().expect("a name").to_string();
            let pod = &doc["spec"]["template"]["spec"];
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"].as_str(),
                Some("RuntimeDefault"),
                "{file}: {name} runs with the runtime's seccomp profile"
            );
            let init = pod["initContainers"].as_sequence().cloned().unwrap_or_default();
            let main = pod["containers"].as_sequence().cloned().unwrap_or_default();
            if kind == "Job" {
                job_stores_its_token(file, &name, &init, &main);
                secrets.extend(job_secrets(&name, &main));
            }
            for container in init.iter().chain(&main) {
                if !container["image"].as_str().unwrap_or_default().starts_with("jejak:") {
                    continue;
                }
                let env: Vec<(String, String)> = container["env"]
                    .as_sequence()
                    .map(|s| {
                        s.iter()
                            .filter_map(|e| Some((e["name"].as_str()?.to_string(), e["value"].as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_default();
                // Prometheus is pointed at the private listener.
                if let Some(port) = doc["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"].as_str() {
                    let listen = env
                        .iter()
                        .find(|(k, _)| k == "JEJAK_METRICS_LISTEN")
                        .map(|(_, v)| v.clone());
                    assert_eq!(listen, Some(format!("0.0.0.0:{port}")), "{file}: {name}'s scrape port");
                }
                // TLS from the mounted Secret.
                if let Some((_, cert)) = env.iter().find(|(k, _)| k == "JEJAK_TLS_CERT") {
                    let mounted = container["volumeMounts"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .any(|m| cert.starts_with(m["mountPath"].as_str().unwrap_or("-")));
                    assert!(mounted, "{file}: {name}'s certificate is on a mounted volume");
                }
                // Volumes: a Secret by its name (its items keep their keys'
                // names), any other by its workload and name.
                let mounts = container["volumeMounts"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| {
                        let (volume, path) = (m["name"].as_str()?, m["mountPath"].as_str()?);
                        let def = pod["volumes"]
                            .as_sequence()
                            .into_iter()
                            .flatten()
                            .find(|v| v["name"].as_str() == Some(volume));
                        let id = match def.and_then(|d| d["secret"]["secretName"].as_str()) {
                            Some(secret) => {
                                for item in def
                                    .and_then(|d| d["secret"]["items"].as_sequence())
                                    .into_iter()
                                    .flatten()
                                {
                                    assert_eq!(
                                        item["key"], item["path"],
                                        "{file}: {name}'s Secret items keep their names"
                                    );
                                }
                                format!("secret/{secret}")
                            }
                            None => format!("{name}/{volume}"),
                        };
                        Some((path.to_string(), id))
                    })
                    .collect();
                out.push(Service {
                    name: name.clone(),
                    replicas: doc["spec"]["replicas"].as_u64().unwrap_or(1) as usize,
                    args: strings(&container["args"]),
                    env,
                    mounts,
                });
            }
        }
    }
    (out, secrets)
}

/// A Secret a Job's step makes from files: its name, and each key with the
/// file it comes from, as that step's container sees it.
#[derive(Debug, Clone)]
struct Secret {
    job: String,
    name: String,
    files: Vec<(String, String)>,
}

/// The Secrets a Job's store step makes with `kubectl create secret
/// generic NAME --from-file=KEY=PATH ...` (the administrator token's aside:
/// the bootstrap step is checked on its own).
fn job_secrets(job: &str, main: &[serde_norway::Value]) -> Vec<Secret> {
    let script = main
        .iter()
        .flat_map(|c| strings(&c["command"]))
        .collect::<Vec<_>>()
        .join(" ");
    script
        .split("create secret generic ")
        .skip(1)
        .filter_map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let name = words.first()?.trim_end_matches(';').to_string();
            let files = words
                .iter()
                .take_while(|w| !w.ends_with(';') || w.starts_with("--from-file="))
                .filter_map(|w| w.trim_end_matches(';').strip_prefix("--from-file="))
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (name != "jejak-admin-token").then(|| Secret {
                job: job.to_string(),
                name,
                files,
            })
        })
        .collect()
}

/// A Job's token goes from its jejak step, through a file on a volume of
/// the pod's memory, into a Secret: the step that stores it reads the file
/// the jejak step writes, and stores it only when one was issued.
fn job_stores_its_token(file: &str, name: &str, init: &[serde_norway::Value], main: &[serde_norway::Value]) {
    let issuing: Vec<&serde_norway::Value> = init
        .iter()
        .filter(|c| strings(&c["args"]).first().map(String::as_str) == Some("bootstrap-token"))
        .collect();
    let [issue] = issuing[..] else {
        panic!("{file}: {name} issues the token in one init container")
    };
    let args = strings(&issue["args"]);
    let out = args
        .iter()
        .skip_while(|a| *a != "--out")
        .nth(1)
        .unwrap_or_else(|| panic!("{file}: {name} writes the token to a file: {args:?}"));
    assert_ne!(out, "-", "{file}: {name} never prints the token into its log");
    let [store] = main else {
        panic!("{file}: {name} stores the token in one container")
    };
    let script = strings(&store["command"]).join(" ");
    assert!(
        script.contains(&format!("[ -s {out} ]"))
            && script.contains(&format!(
                "create secret generic jejak-admin-token --from-file=token={out}"
            )),
        "{file}: {name} stores {out} in a Secret, when it was written: {script}"
    );
    let volume_of = |c: &serde_norway::Value| {
        c["volumeMounts"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|m| out.starts_with(m["mountPath"].as_str().unwrap_or("-")))
            .and_then(|m| m["name"].as_str().map(str::to_string))
    };
    let volume = volume_of(issue).unwrap_or_else(|| panic!("{file}: {name}'s token file is on a volume"));
    assert_eq!(
        volume_of(store),
        Some(volume),
        "{file}: {name}'s two steps share the token's volume"
    );
}

use serde::Deserialize as _;

/// `env` as written, with what cannot be the same on one test machine
/// rewritten: NATS on the test cluster's loopback ports, listen addresses
/// on loopback port 0, the data directory and the TLS files local.
fn on_loopback(s: &Service, root: &std::path::Path, nats: &str, data_dir: &std::path::Path) -> Vec<(String, String)> {
    let tls = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/tls");
    s.env
        .iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                "JEJAK_NATS_URL" => nats.to_string(),
                "JEJAK_LISTEN" | "JEJAK_METRICS_LISTEN" => "127.0.0.1:0".into(),
                "JEJAK_DATA_DIR" => data_dir.display().to_string(),
                "JEJAK_TLS_CERT" => tls.join("server.pem").display().to_string(),
                "JEJAK_TLS_KEY" => tls.join("server.key").display().to_string(),
                // Files on the service's volumes.
                "JEJAK_LOG_KEY" | "JEJAK_LOG_VKEY_FILE" => s.local(root, v).display().to_string(),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// Runs a layout as its file writes it: the bootstrap step, the capture
/// services and the projectors on a three-node NATS cluster; captures
/// through both capture services, reads the same traces from both
/// projectors, and scrapes every service's metrics without a token.
async fn run_layout(what: &str, services: Vec<Service>, secrets: Vec<Secret>) {
    let cluster = jejak_testkit::NatsCluster::start().expect("three NATS nodes with deploy/nats/cluster.conf");
    let nats = cluster.urls();
    let temp = tempfile::tempdir().expect("a scratch directory");
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/tls/ca.pem");
    let role = |s: &Service| s.args.first().cloned().unwrap_or_default();
    let of = |r: &str| services.iter().filter(|s| role(s) == r).cloned().collect::<Vec<_>>();
    let (bootstraps, captures, projectors) = (of("bootstrap-token"), of("capture"), of("projector"));
    let log_keys = of("log-key");
    assert_eq!(bootstraps.len(), 1, "{what}: one bootstrap step");
    assert_eq!(log_keys.len(), 1, "{what}: one step makes the transparency log's key");
    assert_eq!(
        captures.iter().map(|s| s.replicas).sum::<usize>(),
        2,
        "{what}: two capture services"
    );
    assert_eq!(
        projectors.iter().map(|s| s.replicas).sum::<usize>(),
        2,
        "{what}: two projectors"
    );

    // The bootstrap step, as written: the token on its output or in its
    // file (then nowhere in its output), once.
    let bootstrap = |n: usize| {
        let b = &bootstraps[0];
        let scratch = temp.path().join(format!("bootstrap-{n}"));
        std::fs::create_dir_all(&scratch).expect("a scratch directory");
        let env = on_loopback(b, temp.path(), &nats, &scratch);
        // A file named with --out is written in the scratch directory instead.
        let mut args = b.args.clone();
        let at = args.iter().position(|a| a == "--out").map(|i| i + 1);
        let file = match at.and_then(|i| args.get_mut(i)) {
            Some(out) if out != "-" => {
                let f = scratch.join("token");
                *out = f.display().to_string();
                Some(f)
            }
            _ => None,
        };
        let out = std::process::Command::new(jejak_testkit::jejak_bin().expect("the jejak binary"))
            .args(&args)
            .envs(env)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the bootstrap step");
        assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match file {
            None => printed,
            Some(f) => {
                let token = std::fs::read_to_string(&f).unwrap_or_default().trim().to_string();
                let logged = format!("{printed}{}", String::from_utf8_lossy(&out.stderr));
                assert!(
                    token.is_empty() || !logged.contains(&token),
                    "{what}: the token is in the step's output"
                );
                token
            }
        }
    };
    let token = bootstrap(0);
    assert!(
        token.starts_with("jejak_"),
        "{what}: a token on the bootstrap step's output: {token:?}"
    );

    // The transparency log's key, as written: made on the step's volumes,
    // its verifier key printed; a Secret the Job makes of its files.
    let step = &log_keys[0];
    let mut args = step.args.clone();
    for at in 0..args.len() {
        if matches!(args[at].as_str(), "--log-key" | "--vkey-out") {
            if let Some(v) = args.get(at + 1).cloned() {
                args[at + 1] = step.local(temp.path(), &v).display().to_string();
            }
        }
    }
    let scratch = temp.path().join("log-key");
    std::fs::create_dir_all(&scratch).expect("a scratch directory");
    let out = std::process::Command::new(jejak_testkit::jejak_bin().expect("the jejak binary"))
        .args(&args)
        .envs(on_loopback(step, temp.path(), &nats, &scratch))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the log key step");
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    let vkey = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let verifier = jejak_verify::note::Verifier::parse(&vkey)
        .unwrap_or_else(|e| panic!("{what}: the log key step printed {vkey:?}: {e}"));
    for secret in &secrets {
        let job = services
            .iter()
            .find(|s| s.name == secret.job)
            .unwrap_or_else(|| panic!("{what}: no jejak step of the Job {}", secret.job));
        let dir = temp.path().join("volumes").join(format!("secret/{}", secret.name));
        std::fs::create_dir_all(&dir).expect("a Secret's directory");
        for (key, file) in &secret.files {
            std::fs::copy(job.local(temp.path(), file), dir.join(key))
                .unwrap_or_else(|e| panic!("{what}: the Secret {}'s {key} from {file}: {e}", secret.name));
        }
    }

    let mut started = Vec::new();
    for (i, s) in captures
        .iter()
        .chain(&projectors)
        .flat_map(|s| std::iter::repeat_n(s, s.replicas))
        .enumerate()
    {
        let dir = temp.path().join(format!("{}-{i}", s.name));
        std::fs::create_dir_all(&dir).expect("a data directory");
        let env = on_loopback(s, temp.path(), &nats, &dir);
        let tls = env.iter().any(|(k, _)| k == "JEJAK_TLS_CERT");
        let server = Server::spawn(&s.args, &env, dir, tls.then(|| ca.clone()))
            .unwrap_or_else(|e| panic!("{what}: start {}: {e:#}", s.name))
            .with_token(Some(token.clone()));
        started.push((role(s), server));
    }
    let capture: Vec<&Server> = started.iter().filter(|(r, _)| r == "capture").map(|(_, s)| s).collect();
    let projector: Vec<&Server> = started
        .iter()
        .filter(|(r, _)| r == "projector")
        .map(|(_, s)| s)
        .collect();

    // The token works: the shared scenario through one capture service,
    // more receipts through the other.
    let story = jejak_testkit::scenario::rice_mill();
    jejak_testkit::capture_scenario(capture[0], &story)
        .await
        .unwrap_or_else(|e| panic!("{what}: capture with the bootstrap token: {e:#}"));
    let mut other = capture[1]
        .capture()
        .await
        .expect("a client of the second capture service");
    for i in 0..20 {
        other
            .receive_material(jejak_proto::v1::ReceiveMaterialRequest {
                command_id: format!("deploy-rcv-{i}"),
                facility_id: story_facility(&story),
                lot_id: format!("DEPLOY-{i}"),
                product_id: story_raw_product(&story),
                quantity: Some(jejak_proto::v1::Quantity {
                    value: "100".into(),
                    unit: jejak_proto::v1::Unit::Kg as i32,
                }),
                owner_id: story_owner(&story),
                supplier_id: story_supplier(&story),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("{what}: capture through the second service: {s:?}"));
    }
    // Both projectors tell the same stories.
    // The bootstrap token, the scenario and the twenty receipts.
    let end = (1 + story.events.len() + 20) as u64;
    let mut answers = Vec::new();
    for p in &projector {
        jejak_testkit::wait_until(std::time::Instant::now() + Duration::from_secs(60), || async {
            Ok((p.status().await?.events >= end).then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{what}: a projector never caught up: {e:#}"));
        let mut t = p.trace().await.expect("a trace client");
        let mut told = Vec::new();
        for lot in ["B2", "DK1", "DEPLOY-7"] {
            let r = t
                .backward_trace(jejak_proto::v1::TraceRequest {
                    target: Some(jejak_proto::target_to_proto(&jejak_domain::Target::Lot(lot.into()))),
                    max_depth: 0,
                    max_nodes: 0,
                })
                .await
                .unwrap_or_else(|s| panic!("{what}: trace {lot}: {s:?}"))
                .into_inner();
            told.push(format!("{r:?}"));
        }
        answers.push(told);
    }
    assert_eq!(answers[0], answers[1], "{what}: both projectors answer the same traces");
    // Both serve the transparency log: a checkpoint signed with the key the
    // step made, of every event captured.
    for p in &projector {
        let checkpoint = jejak_testkit::wait_until(std::time::Instant::now() + Duration::from_secs(60), || async {
            // Over gRPC: the Kubernetes projectors speak TLS.
            let mut t = p.trace().await?;
            let note = match t.get_checkpoint(jejak_proto::v1::GetCheckpointRequest {}).await {
                Ok(reply) => reply.into_inner().note,
                Err(s) if s.code() == tonic::Code::Unavailable => return Ok(None),
                Err(s) => return Err(s.into()),
            };
            let trusted = jejak_verify::checkpoint::verify_checkpoint(&note, &verifier, &[], 0)?;
            Ok((trusted.checkpoint.size >= end).then_some(trusted.checkpoint))
        })
        .await
        .unwrap_or_else(|e| panic!("{what}: a projector serves no checkpoint signed with the log key: {e:#}"));
        assert!(checkpoint.size >= end, "{what}: {checkpoint:?}");
    }
    // Metrics without a token, from every service's private listener.
    for (r, s) in &started {
        let private = metrics_address(s).await;
        let scraped = http_request(&private, "GET", "/metrics", &[], b"")
            .await
            .expect("scrape");
        assert_eq!(scraped.status, 200, "{what}: {r}'s metrics");
        assert!(scraped.text().contains("# TYPE jejak_"), "{what}: {r}'s metrics");
    }
    // The bootstrap step again: nothing more is issued.
    assert_eq!(bootstrap(1), "", "{what}: a second bootstrap issues nothing");
}

fn story_facility(s: &jejak_testkit::scenario::Scenario) -> String {
    first_receipt(s).facility_id.clone()
}

fn story_raw_product(s: &jejak_testkit::scenario::Scenario) -> String {
    first_receipt(s).product_id.clone()
}

fn story_owner(s: &jejak_testkit::scenario::Scenario) -> String {
    first_receipt(s).owner_id.clone()
}

fn story_supplier(s: &jejak_testkit::scenario::Scenario) -> String {
    first_receipt(s).supplier_id.clone()
}

fn first_receipt(s: &jejak_testkit::scenario::Scenario) -> &jejak_domain::MaterialReceived {
    s.events
        .iter()
        .find_map(|(_, e)| match e {
            jejak_domain::Event::MaterialReceived(r) => Some(r),
            _ => None,
        })
        .expect("the scenario receives material")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_layout_runs_as_written() {
    run_layout("deploy/compose.yaml", compose_services(), Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_layout_runs_as_written() {
    let (services, secrets) = kubernetes_services();
    run_layout("deploy/k8s", services, secrets).await;
}
