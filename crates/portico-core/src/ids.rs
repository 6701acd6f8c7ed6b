//! Id generators in the formats AWS uses (random lowercase alphanumerics, hex, UUIDs).

use rand::Rng;

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &[u8] = b"0123456789abcdef";

/// `n` random lowercase alphanumerics (API Gateway ids: apiId is 10, routeId 7, ...).
pub fn alnum(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALNUM[rng.gen_range(0..ALNUM.len())] as char)
        .collect()
}

/// `n` random lowercase hex digits (EC2 ids are `prefix-` + 17 hex).
pub fn hex(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| HEX[rng.gen_range(0..HEX.len())] as char)
        .collect()
}

/// An EC2-style id: `vpc-0a1b2c3d4e5f60718`.
pub fn ec2(prefix: &str) -> String {
    format!("{prefix}-{}", hex(17))
}

/// A random v4 UUID, lowercase, hyphenated (request ids, ECS task ids use 32 hex without dashes).
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let a = alnum(10);
        assert_eq!(a.len(), 10);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        let v = ec2("vpc");
        assert!(v.starts_with("vpc-") && v.len() == 21);
        assert!(v[4..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(uuid().len(), 36);
    }
}
