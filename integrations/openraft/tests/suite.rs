//! openraft's own storage test suite against the murakami log store: every
//! case gets a fresh store in a directory of its own.

use murakami_openraft::LogStore;
use murakami_openraft::kv::{StateMachine, TypeConfig};
use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore<TypeConfig>, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore<TypeConfig>, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let options = murakami::Options::default().segment_size(64 << 10);
        let store = LogStore::open_with(dir.path(), options).expect("a fresh store opens");
        Ok((dir, store, StateMachine::default()))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft's storage suite failed: {e}");
    }
}
