//! HOT PATH. Small text writers for per-request header values (client addresses, hex ids),
//! without `core::fmt`: formatting an `Ipv4Addr` through `Display` costs about a thousand
//! instructions, which showed up in every hop's profile (docs/dataplane-performance.md).

use std::net::IpAddr;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `ip` as `Display` writes it (`10.0.1.5`; IPv6 through `Display`, which is rare).
pub(crate) fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u8(out, o);
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends a decimal byte without leading zeros.
fn push_u8(out: &mut String, n: u8) {
    if n >= 100 {
        out.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        out.push(char::from(b'0' + (n / 10) % 10));
    }
    out.push(char::from(b'0' + n % 10));
}

/// Writes the lowercase hex of `bytes` into `dst` (two bytes per byte, as far as `dst` goes).
fn hex_into(dst: &mut [u8], bytes: &[u8]) {
    for (d, &b) in dst.chunks_exact_mut(2).zip(bytes) {
        d[0] = HEX[usize::from(b >> 4)];
        d[1] = HEX[usize::from(b & 0xf)];
    }
}

/// Appends an X-Ray trace id (`1-` + 8 hex digits of `epoch_secs` + `-` + 24 random hex
/// digits), as AWS's load balancers and API Gateway make them. Written into a stack buffer
/// and appended once: 40 `String::push` calls cost ~350 instructions.
pub(crate) fn push_trace_id(out: &mut String, epoch_secs: u64) {
    let mut random = [0u8; 12];
    crate::rng::fill(&mut random);
    let mut id = *b"1-00000000-000000000000000000000000";
    hex_into(&mut id[2..10], &(epoch_secs as u32).to_be_bytes());
    hex_into(&mut id[11..], &random);
    // always ASCII
    out.push_str(std::str::from_utf8(&id).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ip_matches_display(a: u8, b: u8, c: u8, d: u8, v6: u128) {
            for ip in [IpAddr::from([a, b, c, d]), IpAddr::from(v6.to_be_bytes())] {
                let mut s = String::new();
                push_ip(&mut s, ip);
                prop_assert_eq!(s, ip.to_string());
            }
        }

        #[test]
        fn hex_matches_format(bytes: Vec<u8>) {
            let mut buf = vec![0u8; bytes.len() * 2];
            hex_into(&mut buf, &bytes);
            let want: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            prop_assert_eq!(String::from_utf8(buf).unwrap(), want);
        }
    }

    #[test]
    fn trace_id_shape() {
        let mut s = String::from("Root=");
        push_trace_id(&mut s, 0x679c_a2c2);
        assert_eq!(&s[..16], "Root=1-679ca2c2-");
        assert_eq!(s.len(), 16 + 24);
        assert!(s[16..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
