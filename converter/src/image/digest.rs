//! Content checked against the digest that names it, as it passes.

use sha2::Digest as _;

/// Checks bytes against a digest (`sha256:<hex>` or `sha512:<hex>`) as they pass.
pub(crate) struct Verifier {
    hasher: Hasher,
    expected: String,
}

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Verifier {
    /// `None` for anything but a lowercase `sha256:` or `sha512:` digest (what registries
    /// use).
    pub(crate) fn new(digest: &str) -> Option<Verifier> {
        let (algorithm, expected) = digest.split_once(':')?;
        let (hasher, length) = match algorithm {
            "sha256" => (Hasher::Sha256(sha2::Sha256::new()), 64),
            "sha512" => (Hasher::Sha512(sha2::Sha512::new()), 128),
            _ => return None,
        };
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        (expected.len() == length && expected.bytes().all(lower_hex)).then(|| Verifier {
            hasher,
            expected: expected.to_owned(),
        })
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    /// Whether what passed has the digest.
    pub(crate) fn matches(self) -> bool {
        let actual = match self.hasher {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        };
        actual == self.expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let mut v = Verifier::new(
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        )
        .unwrap();
        v.update(b"hel");
        v.update(b"lo");
        assert!(v.matches());
        let mut v = Verifier::new(&format!("sha256:{}", "0".repeat(64))).unwrap();
        v.update(b"hello");
        assert!(!v.matches());
        assert!(Verifier::new("md5:5d41402abc4b2a76b9719d911017c592").is_none());
        assert!(Verifier::new(&format!("sha256:{}", "A".repeat(64))).is_none());
        assert!(Verifier::new("sha256:abc").is_none());
        assert!(Verifier::new("sha256").is_none());
    }
}
