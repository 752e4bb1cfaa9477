//! The alert store beside the log (`<data-dir>/alerts`): the alerts derived
//! from the log (keyed by the position of the event that raised them), the
//! webhook subscriptions, and each delivery's state, in one sled tree so
//! that what one log event causes (its alert, a delivery per subscription
//! it reaches, and the position followed) is written in one atomic batch.
//! Alerts are derived state: after a crash the follower goes on from the
//! stored position, so an event's alert is never lost nor made twice.
//!
//! Keys: `c` the last log position followed; `a` + position: an alert
//! (JSON); `h` + id: a subscription (JSON, with its secret); `d` + id +
//! `\0` + position: a delivery (JSON).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::LogError;

const CURSOR: &[u8] = b"c";

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub id: String,
    pub url: String,
    /// What it is sent: alerts for this party, facility or lot (one of
    /// them; none: every alert).
    pub party: Option<String>,
    pub facility: Option<String>,
    pub lot: Option<String>,
    /// The signing secret's bytes, base64 (shown once as `whsec_…`).
    pub secret: String,
    /// Alerts of events after this log position reach it.
    pub after: u64,
    /// Seconds since the epoch.
    pub created_at: i64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
}

/// One alert's delivery to one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub hook: String,
    /// The log position of the alert's event.
    pub alert: u64,
    pub state: State,
    pub attempts: u32,
    /// When the next attempt is due (milliseconds since the epoch).
    pub due_ms: i64,
    /// What the last attempt got: an HTTP status or why it failed.
    pub last: String,
    pub delivered_ms: Option<i64>,
}

/// The alert store. Cheap to clone.
#[derive(Clone)]
pub struct AlertStore {
    db: sled::Db,
    tree: sled::Tree,
}

fn alert_key(position: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'a';
    k[1..].copy_from_slice(&position.to_be_bytes());
    k
}

fn hook_key(id: &str) -> Vec<u8> {
    [b"h", id.as_bytes()].concat()
}

fn delivery_key(hook: &str, alert: u64) -> Vec<u8> {
    [b"d", hook.as_bytes(), b"\0", &alert.to_be_bytes()].concat()
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, LogError> {
    serde_json::to_vec(value).map_err(|e| LogError::Storage(format!("encode an alert record: {e}")))
}

fn parse<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T, LogError> {
    serde_json::from_slice(bytes).map_err(|e| LogError::Corrupt {
        position: 0,
        reason: format!("alert store record {}: {e}", String::from_utf8_lossy(key)),
    })
}

/// What following one log event writes.
pub struct Followed {
    pub position: u64,
    /// The alert it raised (JSON), if any, and the subscriptions it reaches.
    pub alert: Option<(Vec<u8>, Vec<String>)>,
}

impl AlertStore {
    pub fn open(dir: &Path) -> Result<AlertStore, LogError> {
        let db = crate::sled_log::open_db(dir)?;
        let tree = db.open_tree("alerts")?;
        Ok(AlertStore { db, tree })
    }

    /// The last log position followed.
    pub fn cursor(&self) -> Result<u64, LogError> {
        match self.tree.get(CURSOR)? {
            None => Ok(0),
            // Read as 0, a damaged cursor would deliver every alert again.
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| LogError::Storage(format!("the alert store's cursor is {} bytes, not 8", v.len()))),
        }
    }

    /// Records what the events up to `through` raised (`followed`: those
    /// that may have, in order), their deliveries due at `now_ms`, and
    /// `through` as the position followed, in one batch; durable when this
    /// returns if an alert was raised.
    pub fn follow(&self, followed: &[Followed], through: u64, now_ms: i64) -> Result<(), LogError> {
        let mut batch = sled::Batch::default();
        for f in followed {
            if let Some((alert, hooks)) = &f.alert {
                batch.insert(&alert_key(f.position)[..], alert.as_slice());
                for hook in hooks {
                    let d = Delivery {
                        hook: hook.clone(),
                        alert: f.position,
                        state: State::Pending,
                        attempts: 0,
                        due_ms: now_ms,
                        last: String::new(),
                        delivered_ms: None,
                    };
                    batch.insert(delivery_key(hook, f.position), json(&d)?);
                }
            }
        }
        batch.insert(CURSOR, &through.to_be_bytes()[..]);
        self.tree.apply_batch(batch)?;
        // A position moved over events that raised nothing need not be
        // durable at once: after a crash they are followed again, to the
        // same effect.
        if followed.iter().any(|f| f.alert.is_some()) {
            self.db.flush()?;
        }
        Ok(())
    }

    /// Forgets what was derived from another log (its alerts, their
    /// deliveries and the position followed), for the alerts to be derived
    /// again from the log now followed, whose end is `end`. Subscriptions
    /// are kept, each reached only by alerts of events after `end`: the
    /// alerts derived again from what the log already held are not sent
    /// again. Durable when this returns.
    pub fn start_over(&self, end: u64) -> Result<(), LogError> {
        let mut batch = sled::Batch::default();
        for prefix in [&b"a"[..], b"d"] {
            for item in self.tree.scan_prefix(prefix) {
                batch.remove(item?.0);
            }
        }
        for mut hook in self.hooks()? {
            hook.after = end;
            batch.insert(hook_key(&hook.id), json(&hook)?);
        }
        batch.insert(CURSOR, &0u64.to_be_bytes()[..]);
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Forgets what was derived from events after `end` (their alerts and
    /// deliveries), and follows on from `end` if it had gone further: for a
    /// log that ends before the position followed (events lost to a crash
    /// before they were durable, by a store written before alerts waited
    /// for durability). Whether anything was past `end`.
    pub fn truncate_after(&self, end: u64) -> Result<bool, LogError> {
        if self.cursor()? <= end {
            return Ok(false);
        }
        let mut batch = sled::Batch::default();
        for item in self
            .tree
            .range(&alert_key(end.saturating_add(1))[..]..=&alert_key(u64::MAX)[..])
        {
            batch.remove(item?.0);
        }
        for item in self.tree.scan_prefix(b"d") {
            let (k, _) = item?;
            let position = k
                .len()
                .checked_sub(8)
                .and_then(|at| k.get(at..))
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            if position > end {
                batch.remove(k);
            }
        }
        batch.insert(CURSOR, &end.to_be_bytes()[..]);
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(true)
    }

    /// The alerts of events after `after`, at most `limit`, in log order.
    pub fn alerts_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let start = alert_key(after.saturating_add(1));
        let end = alert_key(u64::MAX);
        let mut out = Vec::new();
        for item in self.tree.range(start..=end).take(limit) {
            let (k, v) = item?;
            let position = k
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes);
            out.push((position, v.to_vec()));
        }
        Ok(out)
    }

    pub fn alert(&self, position: u64) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.tree.get(alert_key(position))?.map(|v| v.to_vec()))
    }

    pub fn add_hook(&self, hook: &Hook) -> Result<(), LogError> {
        self.tree.insert(hook_key(&hook.id), json(hook)?)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes a subscription and its deliveries; whether it existed.
    pub fn remove_hook(&self, id: &str) -> Result<bool, LogError> {
        let existed = self.tree.remove(hook_key(id))?.is_some();
        let prefix = [b"d", id.as_bytes(), b"\0"].concat();
        let mut batch = sled::Batch::default();
        for item in self.tree.scan_prefix(&prefix) {
            batch.remove(item?.0);
        }
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(existed)
    }

    pub fn hooks(&self) -> Result<Vec<Hook>, LogError> {
        self.tree
            .scan_prefix(b"h")
            .map(|item| {
                let (k, v) = item?;
                parse(&k, &v)
            })
            .collect()
    }

    /// Every delivery of a subscription (all: `None`).
    pub fn deliveries(&self, hook: Option<&str>) -> Result<Vec<Delivery>, LogError> {
        let prefix = match hook {
            Some(h) => [b"d", h.as_bytes(), b"\0"].concat(),
            None => b"d".to_vec(),
        };
        self.tree
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, v) = item?;
                parse(&k, &v)
            })
            .collect()
    }

    /// Every pending delivery (to queue them at start).
    pub fn pending(&self) -> Result<Vec<Delivery>, LogError> {
        Ok(self
            .deliveries(None)?
            .into_iter()
            .filter(|d| d.state == State::Pending)
            .collect())
    }

    /// One delivery's record.
    pub fn delivery(&self, hook: &str, alert: u64) -> Result<Option<Delivery>, LogError> {
        let key = delivery_key(hook, alert);
        self.tree.get(&key)?.map(|v| parse(&key, &v)).transpose()
    }

    /// Records an attempt's outcome (a delivery of a removed subscription
    /// is dropped). Flushed within half a second, not at once: a record
    /// lost to a crash means one more delivery of the same message (its
    /// receiver drops it by its id), never one fewer.
    pub fn record(&self, d: &Delivery) -> Result<(), LogError> {
        if self.tree.get(hook_key(&d.hook))?.is_none() {
            return Ok(());
        }
        self.tree.insert(delivery_key(&d.hook, d.alert), json(d)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(id: &str) -> Hook {
        Hook {
            id: id.into(),
            url: "https://buyer.example/hooks".into(),
            party: Some("cus-1".into()),
            facility: None,
            lot: None,
            secret: "c2VjcmV0".into(),
            after: 0,
            created_at: 0,
        }
    }

    #[test]
    fn a_damaged_cursor_is_an_error_not_the_start_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = AlertStore::open(dir.path()).unwrap();
        assert_eq!(store.cursor().unwrap(), 0, "nothing followed yet");
        store.tree.insert(CURSOR, &[0, 0, 9][..]).unwrap();
        let err = store.cursor().unwrap_err();
        assert!(err.to_string().contains("3 bytes, not 8"), "{err}");
    }

    #[test]
    fn an_alert_and_its_deliveries_are_written_with_the_position_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = AlertStore::open(dir.path()).unwrap();
            store.add_hook(&hook("wh-1")).unwrap();
            store.add_hook(&hook("wh-2")).unwrap();
            let followed = vec![
                Followed {
                    position: 7,
                    alert: None,
                },
                Followed {
                    position: 8,
                    alert: Some((b"{\"lot\":\"L1\"}".to_vec(), vec!["wh-1".into(), "wh-2".into()])),
                },
            ];
            store.follow(&followed, 9, 1_000).unwrap();
            assert_eq!(store.cursor().unwrap(), 9);
        }
        let store = AlertStore::open(dir.path()).unwrap();
        assert_eq!(store.cursor().unwrap(), 9);
        assert_eq!(
            store.alerts_after(0, 10).unwrap(),
            vec![(8, b"{\"lot\":\"L1\"}".to_vec())]
        );
        assert!(store.alerts_after(8, 10).unwrap().is_empty());
        let mut pending = store.pending().unwrap();
        assert_eq!(pending.len(), 2);
        assert!(pending.iter().all(|d| d.due_ms == 1_000 && d.alert == 8));
        pending[0].state = State::Delivered;
        store.record(&pending[0]).unwrap();
        assert_eq!(store.pending().unwrap().len(), 1);
        assert_eq!(store.delivery(&pending[0].hook, 8).unwrap(), Some(pending[0].clone()));
        assert!(store.remove_hook("wh-2").unwrap());
        assert!(
            store.pending().unwrap().is_empty(),
            "a removed hook's deliveries go with it"
        );
        assert!(store.delivery("wh-2", 8).unwrap().is_none());
        assert_eq!(store.hooks().unwrap(), vec![hook("wh-1")]);
    }

    #[test]
    fn starting_over_forgets_alerts_deliveries_and_cursor_but_keeps_subscriptions_for_what_comes_next() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = AlertStore::open(dir.path()).unwrap();
            store.add_hook(&hook("wh-1")).unwrap();
            let followed = [Followed {
                position: 8,
                alert: Some((b"{}".to_vec(), vec!["wh-1".into()])),
            }];
            store.follow(&followed, 9, 1_000).unwrap();
            store.start_over(5).unwrap();
        }
        let store = AlertStore::open(dir.path()).unwrap();
        assert_eq!(store.cursor().unwrap(), 0);
        assert!(store.alerts_after(0, 10).unwrap().is_empty());
        assert!(store.deliveries(None).unwrap().is_empty());
        assert_eq!(
            store.hooks().unwrap(),
            vec![Hook {
                after: 5,
                ..hook("wh-1")
            }]
        );
    }

    #[test]
    fn truncating_forgets_what_came_after_the_logs_end_and_keeps_what_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = AlertStore::open(dir.path()).unwrap();
        store.add_hook(&hook("wh-1")).unwrap();
        let raised = |position| Followed {
            position,
            alert: Some((format!("{{\"at\":{position}}}").into_bytes(), vec!["wh-1".into()])),
        };
        store.follow(&[raised(4), raised(8)], 9, 1_000).unwrap();
        assert!(!store.truncate_after(9).unwrap(), "nothing past the end");
        assert!(store.truncate_after(6).unwrap());
        assert_eq!(store.cursor().unwrap(), 6);
        assert_eq!(store.alerts_after(0, 10).unwrap(), vec![(4, b"{\"at\":4}".to_vec())]);
        let kept: Vec<u64> = store.deliveries(None).unwrap().iter().map(|d| d.alert).collect();
        assert_eq!(kept, [4]);
        assert_eq!(store.hooks().unwrap(), vec![hook("wh-1")]);
    }
}
