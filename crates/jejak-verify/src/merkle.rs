//! RFC 6962 (RFC 9162 §2.1) Merkle trees over SHA-256: the hashes of leaves
//! and nodes, the root of a tree of any size, and inclusion and consistency
//! proofs, made and checked. The ground for a transparency log of the
//! events (C2SP tlog-tiles requires SHA-256); the per-facility blake3
//! chains stay as they are.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("tree size {first} is larger than tree size {second}")]
    SizesDecrease { first: u64, second: u64 },
    #[error("the proof has {got} hashes; a proof of this shape has {want}")]
    WrongLength { got: usize, want: usize },
    #[error("the proof does not lead to the root")]
    RootMismatch,
    #[error("an empty tree is consistent with nothing in particular: ask from a size above zero")]
    EmptyTree,
}

/// The hash of a leaf's data: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an inner node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the tree whose leaves have these hashes (SHA-256 of the
/// empty string for no leaves).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The audit path of leaf `index` in the tree of `leaves` (RFC 9162 PATH).
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    proof
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 || m >= n {
        return;
    }
    let k = split(n as u64) as usize;
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// The proof that the tree of the first `size1` leaves is a prefix of the
/// tree of `leaves` (RFC 9162 PROOF/SUBPROOF).
pub fn consistency_proof(size1: usize, leaves: &[Hash]) -> Vec<Hash> {
    let mut proof = Vec::new();
    if size1 > 0 && size1 < leaves.len() {
        subproof(size1, leaves, true, &mut proof);
    }
    proof
}

fn subproof(m: usize, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n as u64) as usize;
    if m <= k {
        subproof(m, &leaves[..k], whole, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// A stored tree: the hashes of its complete subtrees. The node at `level`
/// and `index` covers leaves `index·2^level .. (index+1)·2^level`; level 0
/// holds the leaf hashes.
pub trait Nodes {
    type Error;
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// The root of leaves `start..end` of a stored tree, from its complete
/// subtrees (every range the RFC 6962 recursion meets is aligned).
pub fn range_root<N: Nodes + ?Sized>(nodes: &N, start: u64, end: u64) -> Result<Hash, N::Error> {
    let n = end.saturating_sub(start);
    if n == 0 {
        return Ok(Sha256::digest([]).into());
    }
    if n.is_power_of_two() && start % n == 0 {
        return nodes.node(n.trailing_zeros() as u8, start / n);
    }
    let k = split(n);
    Ok(node_hash(
        &range_root(nodes, start, start + k)?,
        &range_root(nodes, start + k, end)?,
    ))
}

/// The audit path of leaf `index` in the first `size` leaves of a stored tree.
pub fn stored_inclusion_proof<N: Nodes + ?Sized>(nodes: &N, index: u64, size: u64) -> Result<Vec<Hash>, N::Error> {
    let mut out = Vec::new();
    let (mut start, mut end) = (0, size);
    let mut siblings = Vec::new();
    while end - start > 1 && index < end {
        let k = split(end - start);
        if index < start + k {
            siblings.push((start + k, end));
            end = start + k;
        } else {
            siblings.push((start, start + k));
            start += k;
        }
    }
    for (a, b) in siblings.into_iter().rev() {
        out.push(range_root(nodes, a, b)?);
    }
    Ok(out)
}

/// The consistency proof from the first `size1` to the first `size2`
/// leaves of a stored tree (empty when `size1` is 0 or equals `size2`).
pub fn stored_consistency_proof<N: Nodes + ?Sized>(nodes: &N, size1: u64, size2: u64) -> Result<Vec<Hash>, N::Error> {
    let mut out = Vec::new();
    if size1 == 0 || size1 >= size2 {
        return Ok(out);
    }
    let (mut start, mut end, mut m, mut whole) = (0, size2, size1, true);
    let mut pushed = Vec::new();
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                pushed.push((start, end));
            }
            break;
        }
        let k = split(n);
        if m <= k {
            pushed.push((start + k, end));
            end = start + k;
        } else {
            pushed.push((start, start + k));
            start += k;
            m -= k;
            whole = false;
        }
    }
    // SUBPROOF emits the deepest hash first.
    for (a, b) in pushed.into_iter().rev() {
        out.push(range_root(nodes, a, b)?);
    }
    Ok(out)
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose
/// root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    let want = inclusion_length(index, size);
    if proof.len() != want {
        return Err(ProofError::WrongLength { got: proof.len(), want });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 || r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// How many hashes the inclusion proof of `index` in `size` leaves has.
fn inclusion_length(index: u64, size: u64) -> usize {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    inner + border
}

/// Checks that the tree of `size1` leaves with root `root1` is a prefix of
/// the tree of `size2` leaves with root `root2` (RFC 9162 §2.1.4.2). Roots
/// are taken as given: one that is not a SHA-256 hash matches nothing a
/// proof leads to.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizesDecrease {
            first: size1,
            second: size2,
        });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                want: 0,
            });
        }
        return match root1 == root2 {
            true => Ok(()),
            false => Err(ProofError::RootMismatch),
        };
    }
    let Ok(first_root) = Hash::try_from(root1) else {
        return Err(ProofError::RootMismatch);
    };
    // The proof of a power-of-two prefix leaves out its root: put it back.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(first_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (size1 - 1, size2 - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let want = {
        let inner = (64 - (f ^ s).leading_zeros()) as usize;
        1 + inner + (f >> inner).count_ones() as usize
    };
    if path.len() != want {
        let leading = usize::from(size1.is_power_of_two());
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want: want - leading,
        });
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 || fr[..] != *root1 || sr[..] != *root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("event {i}").as_bytes())).collect()
    }

    /// A tree kept as every complete subtree's hash, as a store keeps it.
    struct Stored(Vec<Vec<Hash>>);

    impl Stored {
        fn of(leaves: &[Hash]) -> Stored {
            let mut levels = vec![leaves.to_vec()];
            while levels.last().is_some_and(|l| l.len() > 1) {
                let below = levels.last().map(|l| l.as_slice()).unwrap_or_default();
                let up = below.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
                levels.push(up);
            }
            Stored(levels)
        }
    }

    impl Nodes for Stored {
        type Error = (u8, u64);
        fn node(&self, level: u8, index: u64) -> Result<Hash, (u8, u64)> {
            self.0
                .get(level as usize)
                .and_then(|l| l.get(index as usize))
                .copied()
                .ok_or((level, index))
        }
    }

    #[test]
    fn proofs_from_stored_subtrees_equal_proofs_from_the_leaves() {
        for n in 1..=70usize {
            let all = leaves(n);
            let stored = Stored::of(&all);
            for size in 1..=n {
                assert_eq!(
                    range_root(&stored, 0, size as u64),
                    Ok(root(&all[..size])),
                    "root of {size}"
                );
                for i in 0..size {
                    assert_eq!(
                        stored_inclusion_proof(&stored, i as u64, size as u64),
                        Ok(inclusion_proof(i, &all[..size])),
                        "{i} in {size}"
                    );
                }
                for m in 0..=size {
                    assert_eq!(
                        stored_consistency_proof(&stored, m as u64, size as u64),
                        Ok(consistency_proof(m, &all[..size])),
                        "{m} to {size}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_proof_made_for_trees_up_to_70_leaves_verifies_and_a_changed_one_does_not() {
        for n in 1..=70usize {
            let all = leaves(n);
            let r = root(&all);
            for i in 0..n {
                let proof = inclusion_proof(i, &all);
                assert_eq!(
                    verify_inclusion(i as u64, n as u64, &all[i], &proof, &r),
                    Ok(()),
                    "{i} of {n}"
                );
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = node_hash(first, first);
                    assert!(verify_inclusion(i as u64, n as u64, &all[i], &bad, &r).is_err());
                }
            }
            for m in 1..=n {
                let proof = consistency_proof(m, &all);
                let r1 = root(&all[..m]);
                assert_eq!(
                    verify_consistency(m as u64, n as u64, &proof, &r1, &r),
                    Ok(()),
                    "{m} to {n}"
                );
                if m < n {
                    let other = root(&leaves(m + 1)[1..]);
                    assert!(verify_consistency(m as u64, n as u64, &proof, &other, &r).is_err());
                }
            }
        }
    }

    /// The RFC 6962 vectors of `../shared/conformance/rfc6962`.
    fn vectors(kind: &str) -> Vec<(PathBuf, serde_json::Value)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/conformance/rfc6962")
            .join(kind);
        let mut out = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; the conformance data lives in ../shared/conformance beside the checkout",
                    d.display()
                )
            });
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|x| x == "json") {
                    let text = std::fs::read_to_string(&path).expect("read a vector");
                    out.push((path, serde_json::from_str(&text).expect("a JSON vector")));
                }
            }
        }
        assert!(!out.is_empty(), "no vectors under {}", dir.display());
        out
    }

    /// A base64 hash; `None` when absent or not 32 bytes (a vector's garbage).
    fn hash(v: &serde_json::Value) -> Option<Hash> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_str()?).ok()?;
        bytes.try_into().ok()
    }

    /// Base64 bytes of any length (roots may be placeholders).
    fn bytes(v: &serde_json::Value) -> Option<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(v.as_str()?).ok()
    }

    fn proof(v: &serde_json::Value) -> Option<Vec<Hash>> {
        match v {
            serde_json::Value::Null => Some(Vec::new()),
            serde_json::Value::Array(items) => items.iter().map(hash).collect(),
            _ => None,
        }
    }

    /// Runs `verify` on every vector of `kind`: it fails (or cannot read
    /// the vector) exactly where the vector wants an error.
    fn check(kind: &str, verify: impl Fn(&serde_json::Value) -> Option<Result<(), ProofError>>) {
        for (path, v) in vectors(kind) {
            let want_err = v["wantErr"].as_bool().unwrap_or(false);
            let checked = verify(&v);
            let failed = !matches!(checked, Some(Ok(())));
            assert_eq!(failed, want_err, "{}: {checked:?}", path.display());
        }
    }

    #[test]
    fn the_rfc6962_inclusion_vectors_verify_or_fail_as_expected() {
        check("inclusion", |v| {
            let (leaf, root, proof) = (hash(&v["leafHash"])?, hash(&v["root"])?, proof(&v["proof"])?);
            Some(verify_inclusion(
                v["leafIdx"].as_u64()?,
                v["treeSize"].as_u64()?,
                &leaf,
                &proof,
                &root,
            ))
        });
    }

    #[test]
    fn the_rfc6962_consistency_vectors_verify_or_fail_as_expected() {
        check("consistency", |v| {
            let (r1, r2, proof) = (bytes(&v["root1"])?, bytes(&v["root2"])?, proof(&v["proof"])?);
            Some(verify_consistency(
                v["size1"].as_u64()?,
                v["size2"].as_u64()?,
                &proof,
                &r1,
                &r2,
            ))
        });
    }
}
