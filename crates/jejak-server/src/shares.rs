//! Counted places per key, each held by a guard that gives it back when it
//! drops (however its holder ends): a client network's connections
//! (`conn`), a webhook subscription's deliveries in flight (`alerts`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// How many places each key holds.
#[derive(Debug)]
pub(crate) struct Shares<K: Eq + Hash> {
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Eq + Hash> Default for Shares<K> {
    fn default() -> Self {
        Shares { counts: Arc::default() }
    }
}

impl<K: Eq + Hash + Clone> Shares<K> {
    /// A place for `key`, unless it holds `most` already (how many it
    /// holds, then).
    pub(crate) fn take(&self, key: K, most: usize) -> Result<Share<K>, usize> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let held = counts.entry(key.clone()).or_insert(0);
        if *held >= most {
            return Err(*held);
        }
        *held += 1;
        Ok(Share {
            counts: self.counts.clone(),
            key,
        })
    }

    /// Whether no key holds a place.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.counts.lock().is_ok_and(|c| c.is_empty())
    }
}

/// One place of a key, given back on drop.
#[derive(Debug)]
pub(crate) struct Share<K: Eq + Hash> {
    counts: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
}

impl<K: Eq + Hash> Drop for Share<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}
