//! Two namespaces on one database file, as a serving hub and `flisthub import-0hub` beside
//! it: what one commits, the other's kept answers follow.

use std::sync::Arc;

use super::{facts, file, flist, repo, tag};
use crate::blobs::Blobs;
use crate::db::Db;
use crate::namespace::{Change, Kind, Namespace, Source};

fn publish(seed: &str) -> Change {
    Change::Publish {
        repository: repo("alice"),
        name: flist("a"),
        file: file(seed),
        facts: facts(),
        source: Source::Import {
            path: "alice/a.flist".into(),
        },
        contents: Vec::new(),
    }
}

#[tokio::test]
async fn kept_answers_follow_commits_made_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.sqlite3");
    let blobs = Arc::new(Blobs::open(dir.path().join("flists"), dir.path().join("tmp")).unwrap());
    let serving = Namespace::new(Db::open(&path).unwrap(), Arc::clone(&blobs));
    let importing = Namespace::new(Db::open(&path).unwrap(), blobs);

    importing.apply(publish("1"), "import", 10).await.unwrap();
    let info = serving.info(&repo("alice"), &flist("a")).await.unwrap();
    assert_eq!(info.updated(), 10);
    let generation = serving.generation();

    importing.apply(publish("2"), "import", 20).await.unwrap();
    let info = serving.info(&repo("alice"), &flist("a")).await.unwrap();
    assert_eq!(info.updated(), 20, "the kept answer was dropped");
    assert_ne!(serving.generation(), generation);

    // Times set outside the change log are seen too, and only a real change is one.
    let change = Change::Tag {
        repository: repo("alice"),
        tag: tag("v1"),
        link: flist("a"),
        source_repository: repo("alice"),
        source: flist("a"),
    };
    importing.apply(change, "import", 30).await.unwrap();
    let times = vec![(tag("v1"), 7)];
    assert!(
        importing
            .set_times(&repo("alice"), 5, times.clone())
            .await
            .unwrap()
    );
    assert!(!importing.set_times(&repo("alice"), 5, times).await.unwrap());
    let stored = serving.stored(&repo("alice")).await.unwrap().unwrap();
    assert_eq!(stored.updated, 5);
    assert_eq!(stored.tags["v1"].mtime, 7);
    assert_eq!(
        stored.tags["v1"].members["a.flist"],
        ("alice".to_owned(), "a.flist".to_owned(), 30)
    );
    let entry = &stored.entries["a.flist"];
    assert_eq!((entry.kind, entry.mtime), (Kind::Regular, 20));
    assert_eq!(entry.sha256.as_deref(), Some(file("2").sha256.as_str()));
    assert!(serving.stored(&repo("bob")).await.unwrap().is_none());
}
