//! Just enough of the DNS wire format (RFC 1035) for the allow-list resolver: read a
//! query's question, build NXDOMAIN / empty answers, and pull A records and their TTLs
//! out of an upstream response.

use std::net::Ipv4Addr;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const RCODE_NXDOMAIN: u16 = 3;
pub const RCODE_NOERROR: u16 = 0;
const HEADER: usize = 12;

/// The single question of a standard query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    /// Lowercase, no trailing dot.
    pub name: String,
    pub qtype: u16,
    /// End of the question section in the packet.
    question_end: usize,
}

fn u16_at(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

fn u32_at(p: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a (possibly compressed) name at `at`; returns it and where the name ends in
/// the packet (after the first pointer, if any).
fn read_name(p: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *p.get(at)? as usize;
        match len {
            0 => {
                let name = labels.join(".");
                return (name.len() <= 253).then(|| (name, end.unwrap_or(at + 1)));
            }
            l if l & 0xC0 == 0xC0 => {
                end.get_or_insert(at + 2);
                at = (usize::from(u16_at(p, at)?)) & 0x3FFF;
            }
            l if l <= 63 => {
                let label = p.get(at + 1..at + 1 + l)?;
                labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
                at += 1 + l;
            }
            _ => return None,
        }
    }
    None
}

/// A standard query (QR=0, opcode 0) with exactly one question.
pub fn parse_query(p: &[u8]) -> Option<Query> {
    let flags = u16_at(p, 2)?;
    if flags & 0x8000 != 0 || (flags >> 11) & 0xF != 0 || u16_at(p, 4)? != 1 {
        return None;
    }
    let (name, after) = read_name(p, HEADER)?;
    let qtype = u16_at(p, after)?;
    u16_at(p, after + 2)?;
    Some(Query {
        id: u16_at(p, 0)?,
        name,
        qtype,
        question_end: after + 4,
    })
}

/// An answer to `query` with no records and `rcode`.
pub fn empty_response(query_packet: &[u8], query: &Query, rcode: u16) -> Vec<u8> {
    let mut out = query_packet[..query.question_end].to_vec();
    let rd = u16_at(query_packet, 2).unwrap_or(0) & 0x0100;
    let flags = 0x8000 | rd | 0x0080 | (rcode & 0xF);
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..12].fill(0);
    out
}

/// The response's id.
pub fn response_id(p: &[u8]) -> Option<u16> {
    u16_at(p, 0)
}

/// Every A record in the answer section, with its TTL in seconds.
pub fn a_records(p: &[u8]) -> Vec<(Ipv4Addr, u32)> {
    let parse = || -> Option<Vec<(Ipv4Addr, u32)>> {
        let questions = u16_at(p, 4)?;
        let answers = u16_at(p, 6)?;
        let mut at = HEADER;
        for _ in 0..questions {
            at = read_name(p, at)?.1 + 4;
        }
        let mut found = Vec::new();
        for _ in 0..answers {
            at = read_name(p, at)?.1;
            let (rtype, ttl, len) = (
                u16_at(p, at)?,
                u32_at(p, at + 4)?,
                usize::from(u16_at(p, at + 8)?),
            );
            let data = p.get(at + 10..at + 10 + len)?;
            if rtype == TYPE_A && len == 4 {
                found.push((Ipv4Addr::new(data[0], data[1], data[2], data[3]), ttl));
            }
            at += 10 + len;
        }
        Some(found)
    };
    parse().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p
    }

    #[test]
    fn queries_are_read_and_refused() {
        let q = query("WWW.Example.com", TYPE_A);
        let parsed = parse_query(&q).unwrap();
        assert_eq!(
            (parsed.id, parsed.name.as_str(), parsed.qtype),
            (0x1234, "www.example.com", 1)
        );
        let r = empty_response(&q, &parsed, RCODE_NXDOMAIN);
        assert_eq!(&r[..4], &[0x12, 0x34, 0x81, 0x83]);
        assert_eq!(&r[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&r[12..], &q[12..]);
        let mut response = q.clone();
        response[2] |= 0x80;
        assert!(parse_query(&response).is_none());
        assert!(parse_query(&q[..15]).is_none());
        assert!(parse_query(&[]).is_none());
    }

    #[test]
    fn a_records_follow_compression_and_skip_other_types() {
        let mut p = query("a.test", TYPE_A);
        p[2] = 0x81;
        p[7] = 2;
        // CNAME a.test -> b.test (compressed owner), then A for b.test (pointer into rdata).
        p.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'b', 0xC0, 14]);
        let b_at = (p.len() - 4) as u8;
        p.extend_from_slice(&[0xC0, b_at, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 198, 18, 1, 10]);
        assert_eq!(a_records(&p), vec![(Ipv4Addr::new(198, 18, 1, 10), 300)]);
        assert!(a_records(&p[..p.len() - 2]).is_empty());
        let mut looped = query("a.test", TYPE_A);
        looped[12] = 0xC0;
        looped[13] = 12;
        assert!(parse_query(&looped).is_none());
    }
}
