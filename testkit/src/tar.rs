//! Tar archives byte by byte, for tests of hostile input: headers carry whatever name, type,
//! size or link they are given (the checksum is computed, so the header is otherwise valid),
//! which a tar library would refuse to write.

use std::io::Write;

/// A raw ustar header; `typeflag` as in tar(5). Sizes that do not fit the octal field (8 GiB
/// and more) are written in base-256, as GNU tar does.
pub fn tar_header(name: &[u8], typeflag: u8, size: u64, linkname: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{:0width$o}\0", value, width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size < 1 << 33 {
        octal(&mut h[124..136], size);
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = typeflag;
    h[157..157 + linkname.len().min(100)].copy_from_slice(&linkname[..linkname.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// An archive member: header plus data padded to the block size.
pub fn member(name: &[u8], typeflag: u8, data: &[u8], linkname: &[u8]) -> Vec<u8> {
    let mut out = tar_header(name, typeflag, data.len() as u64, linkname).to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

pub fn file(name: &[u8], data: &[u8]) -> Vec<u8> {
    member(name, b'0', data, b"")
}

pub fn symlink(name: &[u8], target: &[u8]) -> Vec<u8> {
    member(name, b'2', b"", target)
}

pub fn hardlink(name: &[u8], target: &[u8]) -> Vec<u8> {
    member(name, b'1', b"", target)
}

pub fn dir(name: &[u8]) -> Vec<u8> {
    member(name, b'5', b"", b"")
}

/// A PAX extended header carrying `records` for the next member.
pub fn pax(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        // "<len> <key>=<value>\n" where len counts itself.
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while format!("{len}").len() + rest != len {
            len += 1;
        }
        body.extend_from_slice(format!("{len} {key}=").as_bytes());
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    member(b"PaxHeader", b'x', &body, b"")
}

/// Two zero blocks: tar's end-of-archive marker.
pub fn end_of_archive() -> Vec<u8> {
    vec![0u8; 1024]
}

/// `members` followed by the end-of-archive marker.
pub fn archive(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = members.concat();
    out.extend(end_of_archive());
    out
}

/// A header bomb: a record header of `typeflag` (`x`, `g`, `L` or `K`) declaring `declared`
/// bytes, followed by `sent` bytes of its data (a repeated PAX-like line, as an attacker
/// would send to keep a reader going) and nothing else.
pub fn header_bomb(typeflag: u8, declared: u64, sent: usize) -> Vec<u8> {
    let mut out = tar_header(b"././@LongLink", typeflag, declared, b"").to_vec();
    let line = b"30 comment=aaaaaaaaaaaaaaaaaa\n";
    out.extend(line.iter().cycle().take(sent));
    out
}

/// gzip of `data` (default level).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// A gzip stream that expands to a tar archive of one file of `size` zero bytes (whole MiB):
/// 8 GiB of zeros in about 8 MB.
pub fn zeros_gzip(name: &[u8], size: u64) -> Vec<u8> {
    let mut out = header_and_zeros_gz(&tar_header(name, b'0', size, b""), size);
    out.extend(gzip(&end_of_archive()));
    out
}

/// gzip of `header` then `size` zero bytes (whole MiB), from repeated gzip members (one per
/// MiB) so that it costs its compressed size only, never its expanded size.
fn header_and_zeros_gz(header: &[u8], size: u64) -> Vec<u8> {
    assert!(size % (1 << 20) == 0, "whole MiB only");
    let mut out = gzip(header);
    let mib = gzip(&vec![0u8; 1 << 20]);
    for _ in 0..size >> 20 {
        out.extend_from_slice(&mib);
    }
    out
}

/// Writes `value` over the header field at `range` and recomputes the checksum, for headers
/// whose numeric fields carry what no tar writer would put there.
pub fn set_field(header: &mut [u8], range: std::ops::Range<usize>, value: &[u8]) {
    header[range.clone()].fill(0);
    header[range.start..range.start + value.len()].copy_from_slice(value);
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header[..512].iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// A compressed header bomb: gzip of a record header of `typeflag` declaring `declared`
/// bytes (whole MiB) and all of that data (zeros: what the record holds does not matter to
/// a reader that keeps it whole): a 1 GiB record in about 1 MB.
pub fn header_bomb_gz(typeflag: u8, declared: u64) -> Vec<u8> {
    header_and_zeros_gz(
        &tar_header(b"././@LongLink", typeflag, declared, b""),
        declared,
    )
}
