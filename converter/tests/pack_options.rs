//! Options of the pack pipeline that only the library exposes: the readme import and
//! metadata that arrives after the input.

use std::sync::Arc;

use chunkstore::{DirOptions, DirStore};
use converter::{LateMetadata, PackOptions, Progress, README_LIMIT};

fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, name, &data[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

async fn pack(archive: Vec<u8>, options: PackOptions) -> converter::Result<flist::Metadata> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DirStore::open(dir.path().join("store"), DirOptions::default()).unwrap());
    let out = dir.path().join("out.flist");
    let progress = Arc::new(Progress::default());
    converter::pack_tar(
        std::io::Cursor::new(archive),
        "t.tar".into(),
        out.clone(),
        store,
        options,
        progress,
    )
    .await?;
    Ok(flist::Flist::open(&out).unwrap().metadata().unwrap())
}

fn importing() -> PackOptions {
    PackOptions {
        import_readme: true,
        ..PackOptions::default()
    }
}

#[tokio::test]
async fn readme_at_the_root_is_imported_and_plain_wins() {
    let md = pack(
        tar_of(&[(".README.md", b"# markdown".to_vec())]),
        importing(),
    )
    .await
    .unwrap();
    assert_eq!(md.readme().unwrap().as_deref(), Some("# markdown"));

    let both = tar_of(&[
        (".README.md", b"# markdown".to_vec()),
        (".README", b"plain".to_vec()),
        ("sub/.README", b"not at the root".to_vec()),
    ]);
    let md = pack(both.clone(), importing()).await.unwrap();
    assert_eq!(md.readme().unwrap().as_deref(), Some("plain"));

    let md = pack(both, PackOptions::default()).await.unwrap();
    assert_eq!(md.readme().unwrap(), None, "only when asked");

    let huge = vec![b'x'; README_LIMIT as usize + 1];
    let md = pack(tar_of(&[(".README", huge)]), importing())
        .await
        .unwrap();
    assert_eq!(md.readme().unwrap(), None, "over the limit");
}

#[tokio::test]
async fn late_metadata_is_recorded_or_fails_the_pack() {
    let archive = tar_of(&[("f", b"data".to_vec())]);
    let mut options = PackOptions::default();
    options.metadata.set("early", "1");
    options.late_metadata = Some(LateMetadata::new(|md| {
        md.set("late", "2");
        md.set("early", "overridden");
        Ok(())
    }));
    let md = pack(archive.clone(), options).await.unwrap();
    assert_eq!(md.get("late"), Some("2"));
    assert_eq!(md.get("early"), Some("overridden"));

    let options = PackOptions {
        late_metadata: Some(LateMetadata::new(|_| Err("the form was cut short".into()))),
        ..PackOptions::default()
    };
    let err = pack(archive, options).await.unwrap_err().to_string();
    assert!(err.contains("cut short"), "{err}");
}
