//! Access tokens: making one (id from the command id, secret from the
//! operating system), the command that issues it, and the administrator
//! token a server makes at start when it has none.

use jejak_domain::{Role, Time, TokenTable};

/// A new token for the command `command_id`: its id, the token string (to
/// show once) and the hash to store.
pub fn new_token(command_id: &str) -> anyhow::Result<(String, String, [u8; 32])> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("the system's random source failed: {e}"))?;
    let id = jejak_domain::access::token_id_for(command_id);
    let token = jejak_domain::access::token_string(&id, &secret);
    let hash = jejak_domain::access::secret_hash(&token);
    Ok((id, token, hash))
}

/// The command that issues a token, from the admin API's fields; the
/// domain checks them when the command is decided.
pub fn issue_command_proto(
    command_id: &str,
    role: i32,
    facility_ids: Vec<String>,
    party_id: String,
    expires_at: Option<prost_types::Timestamp>,
    label: String,
) -> anyhow::Result<(jejak_proto::v1::command::Kind, String, String)> {
    let (token_id, token, hash) = new_token(command_id)?;
    let kind = jejak_proto::v1::command::Kind::IssueToken(jejak_proto::v1::IssueTokenCommand {
        command_id: command_id.to_string(),
        token_id: token_id.clone(),
        secret_hash: hash.to_vec(),
        role,
        facility_ids,
        party_id,
        expires_at,
        label,
    });
    Ok((kind, token_id, token))
}

/// The same from domain values.
pub fn issue_command(
    command_id: &str,
    role: Role,
    facility_ids: Vec<String>,
    party_id: Option<String>,
    expires_at: Time,
    label: String,
) -> anyhow::Result<(jejak_proto::v1::command::Kind, String, String)> {
    issue_command_proto(
        command_id,
        jejak_proto::access_role_to_proto(role) as i32,
        facility_ids,
        party_id.unwrap_or_default(),
        Some(jejak_proto::time_to_proto(expires_at)),
        label,
    )
}

/// How long the administrator token made at start lives.
const BOOTSTRAP_TOKEN_DAYS: i64 = 90;

/// With no active administrator token in the log, issues one (an event
/// like any other, actor `system:bootstrap`) and writes it to `file`,
/// readable by the owner only: the one place it is ever shown.
pub async fn bootstrap_admin<S: jejak_engine::Engine>(
    writer: &S,
    tokens: &TokenTable,
    file: Option<&std::path::Path>,
    clock: &dyn jejak_domain::Clock,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let now = clock.now();
    if tokens.has_active_admin(now) {
        return Ok(());
    }
    let Some(file) = file else {
        tracing::warn!(
            "no active administrator token and no --admin-token-file: nobody can manage tokens on this service; \
             start one instance with --admin-token-file to create one"
        );
        return Ok(());
    };
    // Named after the state it was decided on: two bootstraps that both
    // found no active administrator token (two instances starting at once,
    // a Job run twice) send the same command id, and only one of them
    // issues a token.
    let command_id = format!("bootstrap-admin-{}", tokens.issued());
    let expires_at = Time(
        now.0
            .saturating_add(BOOTSTRAP_TOKEN_DAYS * 24 * 3600 * Time::NANOS_PER_SEC),
    );
    let (kind, token_id, token) = issue_command(
        &command_id,
        Role::Admin,
        Vec::new(),
        None,
        expires_at,
        "administrator token made at start".into(),
    )?;
    let another = || {
        anyhow::anyhow!(
            "another instance issued the first administrator token at the same moment ({command_id}); \
             whoever started it holds that token, and none was issued here"
        )
    };
    let reply = match crate::capture::submit(writer, kind, "system:bootstrap", None).await {
        Ok(reply) => reply,
        Err(s) if s.code() == tonic::Code::AlreadyExists => return Err(another()),
        Err(s) => anyhow::bail!("issue the administrator token: {}", s.message()),
    };
    if reply.replayed {
        return Err(another());
    }
    if file == std::path::Path::new("-") {
        // A one-shot bootstrap step's own output, read once by its operator.
        println!("{token}");
        tracing::warn!(
            token_id,
            "no active administrator token existed: issued one and printed it"
        );
        return Ok(());
    }
    write_secret(file, &token).with_context(|| format!("write the administrator token to {}", file.display()))?;
    tracing::warn!(
        token_id,
        file = %file.display(),
        "no active administrator token existed: issued one and wrote it to the file (owner-only); \
         use it to create tokens with `jejak token create`"
    );
    Ok(())
}

/// Writes `secret` to a new file only its owner can read.
fn write_secret(file: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(file);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(file)?;
    writeln!(f, "{secret}")?;
    f.sync_all()
}
