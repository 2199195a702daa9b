//! The requests and replies of the 0-db protocol (RESP2), as 0-db (and the hub's 0-db
//! gateway) takes them: a request is an array of bulk strings, nothing else. Every size
//! comes from the client and is bounded before anything is read or allocated for it.

use bytes::{Bytes, BytesMut};

/// Most elements in one request (0-db's limit).
pub const MAX_ARGS: usize = 1024;
/// Longest header line (`*<n>` or `$<len>`): a number, its sign and the line end.
const MAX_LINE: usize = 24;

/// Why a request cannot be read; the connection is answered and closed, as 0-db does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    /// Not an array (an inline command, garbage).
    NotAnArray,
    /// An element that is not a bulk string.
    NotBulk,
    /// A header line that is not a number.
    BadLength,
    TooManyArgs,
    /// An element, or the request as a whole, larger than allowed.
    TooLarge,
}

impl Malformed {
    /// 0-db's reply to it.
    pub fn reply(&self) -> &'static str {
        match self {
            Malformed::NotAnArray => "Malformed request, array expected",
            Malformed::NotBulk | Malformed::BadLength => "Malformed query string",
            Malformed::TooManyArgs => "Too many arguments",
            Malformed::TooLarge => "Payload too big",
        }
    }
}

/// Reads requests out of a buffer the connection fills.
pub struct Parser {
    /// Largest element.
    max_arg: usize,
    /// Largest request, all elements together.
    max_request: usize,
}

impl Parser {
    pub fn new(max_arg: usize, max_request: usize) -> Parser {
        Parser {
            max_arg,
            max_request,
        }
    }

    /// The next whole request at the start of `buf`, taken out of it; `Ok(None)` while it
    /// is incomplete (then `need` says how many bytes the request holds in all, when known,
    /// so that the caller can reserve them once).
    pub fn next(
        &self,
        buf: &mut BytesMut,
        need: &mut usize,
    ) -> Result<Option<Vec<Bytes>>, Malformed> {
        let mut at = 0;
        let Some(count) = self.header(buf, &mut at, b'*', Malformed::NotAnArray)? else {
            return Ok(None);
        };
        if count > MAX_ARGS {
            return Err(Malformed::TooManyArgs);
        }
        let mut spans = Vec::with_capacity(count);
        for _ in 0..count {
            let Some(len) = self.header(buf, &mut at, b'$', Malformed::NotBulk)? else {
                return Ok(None);
            };
            if len > self.max_arg || at + len > self.max_request {
                return Err(Malformed::TooLarge);
            }
            if buf.len() < at + len + 2 {
                *need = at + len + 2;
                return Ok(None);
            }
            if &buf[at + len..at + len + 2] != b"\r\n" {
                return Err(Malformed::BadLength);
            }
            spans.push((at, len));
            at += len + 2;
        }
        *need = 0;
        let request = buf.split_to(at).freeze();
        Ok(Some(
            spans
                .into_iter()
                .map(|(start, len)| request.slice(start..start + len))
                .collect(),
        ))
    }

    /// A `<kind><number>\r\n` line at `at`, moving past it.
    fn header(
        &self,
        buf: &BytesMut,
        at: &mut usize,
        kind: u8,
        wrong: Malformed,
    ) -> Result<Option<usize>, Malformed> {
        let rest = &buf[*at..];
        let Some(&first) = rest.first() else {
            return Ok(None);
        };
        if first != kind {
            return Err(wrong);
        }
        let Some(end) = rest.iter().take(MAX_LINE).position(|&b| b == b'\n') else {
            return if rest.len() >= MAX_LINE {
                Err(Malformed::BadLength)
            } else {
                Ok(None)
            };
        };
        let line = rest[1..end]
            .strip_suffix(b"\r")
            .ok_or(Malformed::BadLength)?;
        let number = std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or(Malformed::BadLength)?;
        *at += end + 1;
        Ok(Some(number))
    }
}

/// Replies, appended to an output buffer.
pub mod reply {
    use bytes::{BufMut, BytesMut};

    pub fn simple(out: &mut BytesMut, text: &str) {
        out.put_u8(b'+');
        out.put_slice(text.as_bytes());
        out.put_slice(b"\r\n");
    }

    /// An error reply, without a code word (0-db writes none).
    pub fn error(out: &mut BytesMut, text: &str) {
        out.put_u8(b'-');
        // A message never breaks the framing, whatever it quotes.
        for b in text.bytes() {
            out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        out.put_slice(b"\r\n");
    }

    pub fn integer(out: &mut BytesMut, n: i64) {
        out.put_slice(format!(":{n}\r\n").as_bytes());
    }

    pub fn bulk(out: &mut BytesMut, data: &[u8]) {
        out.put_slice(format!("${}\r\n", data.len()).as_bytes());
        out.put_slice(data);
        out.put_slice(b"\r\n");
    }

    pub fn nil(out: &mut BytesMut) {
        out.put_slice(b"$-1\r\n");
    }

    pub fn array_header(out: &mut BytesMut, len: usize) {
        out.put_slice(format!("*{len}\r\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Option<Vec<Bytes>>, Malformed> {
        let mut buf = BytesMut::from(input);
        let mut need = 0;
        Parser::new(16, 64).next(&mut buf, &mut need)
    }

    #[test]
    fn requests_whole_and_in_pieces() {
        let request = b"*2\r\n$3\r\nGET\r\n$4\r\nab\r\n\r\n";
        let args = parse(request).unwrap().unwrap();
        assert_eq!(
            args,
            [Bytes::from_static(b"GET"), Bytes::from_static(b"ab\r\n")]
        );
        for cut in 0..request.len() {
            assert_eq!(parse(&request[..cut]).unwrap(), None, "{cut}");
        }
        // Two pipelined: the first is taken, the second stays.
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI"[..]);
        let mut need = 0;
        let parser = Parser::new(16, 64);
        assert_eq!(parser.next(&mut buf, &mut need).unwrap().unwrap().len(), 1);
        assert_eq!(&buf[..], b"*1\r\n$4\r\nPI");
        assert_eq!(parser.next(&mut buf, &mut need).unwrap(), None);
        assert_eq!(need, 14);
        // An empty element is an element.
        assert_eq!(parse(b"*1\r\n$0\r\n\r\n").unwrap().unwrap(), [Bytes::new()]);
    }

    #[test]
    fn what_0_db_refuses() {
        assert_eq!(parse(b"PING\r\n"), Err(Malformed::NotAnArray));
        assert_eq!(parse(b"*1\r\n:1\r\n"), Err(Malformed::NotBulk));
        assert_eq!(parse(b"*x\r\n"), Err(Malformed::BadLength));
        assert_eq!(parse(b"*-1\r\n"), Err(Malformed::BadLength));
        assert_eq!(parse(b"*1025\r\n"), Err(Malformed::TooManyArgs));
        // Refused from its header, before the data is there.
        assert_eq!(parse(b"*1\r\n$17\r\n"), Err(Malformed::TooLarge));
        assert_eq!(parse(b"*5\r\n$16\r\n0123456789abcdef\r\n$16\r\n0123456789abcdef\r\n$16\r\n0123456789abcdef\r\n$16\r\n"), Err(Malformed::TooLarge));
        assert_eq!(parse(b"*1\r\n$2\r\nabcd"), Err(Malformed::BadLength));
        assert_eq!(
            parse(&[b'*'; 100]),
            Err(Malformed::BadLength),
            "an endless header line"
        );
        assert_eq!(
            parse(b"*99999999999999999999999\r\n"),
            Err(Malformed::BadLength)
        );
    }
}
