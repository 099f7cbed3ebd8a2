//! Target R2 as a test: every crash-shaped store file (see `flowmem_benches::damage`) opens as exactly its
//! durable prefix, for a reader and for a writer.

#[test]
fn every_crash_shaped_file_opens_as_its_durable_prefix() {
    let dir =
        std::env::temp_dir().join(format!("flowmem-crash-shaped-test-{}", std::process::id()));
    let s = flowmem_benches::damage::trials(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    println!("{s:?}");
    assert!(s.files >= 10_000, "{s:?}");
    assert_eq!((s.refused, s.wrong), (0, 0), "{s:?}");
}
