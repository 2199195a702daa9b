//! Share figures kept through publishes, replacements and deletes.

use super::*;
use crate::namespace::share::{ContentSize, Share, share};

fn content(byte: u8, size: u64) -> ContentSize {
    ([byte; 32], size)
}

impl Ns {
    fn publish_contents(&mut self, time: i64, name: &str, seed: &str, contents: &[ContentSize]) {
        self.at(
            time,
            Change::Publish {
                repository: repo("alice"),
                name: flist(name),
                file: file(seed),
                facts: facts(),
                source: Source::Archive {
                    file: format!("{seed}.tar"),
                },
                contents: contents.to_vec(),
            },
        )
        .unwrap();
    }

    fn share(&self, seed: &str) -> Option<(u64, u64)> {
        share(&self.conn, &file(seed).sha256).unwrap().map(
            |Share {
                 content_bytes,
                 shared_bytes,
             }| (shared_bytes, content_bytes),
        )
    }
}

#[test]
fn shares_follow_the_files_that_hold_each_content() {
    let mut ns = Ns::new();
    let (common, one, two) = (content(1, 1000), content(2, 500), content(3, 3000));
    ns.publish_contents(1, "one", "a", &[common, one]);
    assert_eq!(ns.share("a"), Some((0, 1500)));
    ns.publish_contents(2, "two", "b", &[common, two]);
    assert_eq!(ns.share("a"), Some((1000, 1500)));
    assert_eq!(ns.share("b"), Some((1000, 4000)));
    // A third holder changes nothing for the first two.
    ns.publish_contents(3, "three", "c", &[common]);
    assert_eq!(ns.share("a"), Some((1000, 1500)));
    assert_eq!(ns.share("c"), Some((1000, 1000)));
    // The same file under another name is the same file.
    ns.publish_contents(4, "again", "c", &[common]);
    assert_eq!(ns.share("c"), Some((1000, 1000)));
    // Replacing `three` leaves `c` named by `again`: nothing changes.
    ns.publish_contents(5, "three", "d", &[two]);
    assert_eq!(ns.share("b"), Some((4000, 4000)));
    assert_eq!(ns.share("d"), Some((3000, 3000)));
    for (time, name) in [(6, "again"), (7, "two")] {
        ns.at(
            time,
            Change::Delete {
                repository: repo("alice"),
                name: flist(name),
                or_taglink: taglink(name),
            },
        )
        .unwrap();
    }
    // `common` is `a`'s alone again, `two` is `d`'s alone.
    assert_eq!(ns.share("a"), Some((0, 1500)));
    assert_eq!(ns.share("b"), None);
    assert_eq!(ns.share("d"), Some((0, 3000)));
}
