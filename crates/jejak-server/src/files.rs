//! What the server does to its process before it opens anything: its files
//! are its own (a data directory holds every event and the token table's
//! hashes), and it may hold as many connections as the system allows.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rustix::fs::Mode;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Files the process creates from now on are owner-only (0600, and 0700
/// for directories), whatever the umask it was started with.
pub fn owner_only_from_now_on() {
    rustix::process::umask(Mode::from_raw_mode(0o077));
}

/// Makes `dir` and everything already in it owner-only (data directories
/// created by an older version, or under a looser umask).
pub fn make_owner_only(dir: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_dir() {
        set_mode(dir, &meta, 0o700)?;
        for entry in std::fs::read_dir(dir)? {
            make_owner_only(&entry?.path())?;
        }
    } else {
        set_mode(dir, &meta, 0o600)?;
    }
    Ok(())
}

fn set_mode(path: &Path, meta: &std::fs::Metadata, mode: u32) -> std::io::Result<()> {
    if meta.permissions().mode() & 0o777 != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Raises the soft limit on open descriptors to the hard one, so that the
/// connection limit, not the descriptor limit, is what callers meet.
/// Returns the limit now in force.
pub fn raise_descriptor_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), max) = (limit.current, limit.maximum) else {
        return None;
    };
    let wanted = max.unwrap_or(current);
    if wanted > current {
        let raised = Rlimit {
            current: Some(wanted),
            maximum: max,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Some(wanted);
        }
    }
    Some(current)
}

/// Lowers the calling thread's scheduling priority (nice 19, the lowest; on Linux
/// `setpriority` applies to the thread): background work that must not
/// take the cores from requests.
pub fn lower_priority() {
    if let Err(e) = rustix::process::setpriority_process(None, 19) {
        tracing::debug!(error = %e, "could not lower a background thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_files_and_directories_become_owner_only() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let sub = dir.path().join("log");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::write(sub.join("db"), b"x").expect("write");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(sub.join("db"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
        make_owner_only(dir.path()).expect("make owner-only");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&sub.join("db")), 0o600);
        assert_eq!(mode(dir.path()), 0o700);
    }

    #[test]
    fn the_descriptor_limit_is_raised_to_the_hard_one() {
        let limit = getrlimit(Resource::Nofile);
        let (Some(current), Some(hard)) = (limit.current, limit.maximum) else {
            // Unlimited: nothing to raise, and the limit in force is said as none.
            assert_eq!(raise_descriptor_limit(), limit.current);
            return;
        };
        // One below the hard limit (a process may always lower its soft
        // limit; by one, so that tests beside this one keep their files).
        let lowered = Rlimit {
            current: Some(current.min(hard) - 1),
            maximum: Some(hard),
        };
        setrlimit(Resource::Nofile, lowered).expect("lower the soft limit");
        assert_eq!(raise_descriptor_limit(), Some(hard));
        assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
    }
}
