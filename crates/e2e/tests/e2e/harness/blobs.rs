//! A server's blobs as the tests see them behind its back: listed, read, replaced and
//! deleted on the local disk or in the Garage bucket, whichever the server uses.

use super::*;

impl Server {
    /// Blobs under `under` (`blobs`, `restic`, `mercury`; "" for all) with their sizes, keys
    /// relative to the blob root. On the local disk this includes an upload's staging file.
    pub fn blobs(&self, under: &str) -> Vec<(String, u64)> {
        if let Some(store) = self.s3() {
            use futures::TryStreamExt as _;
            let prefix = (!under.is_empty()).then(|| object_store::path::Path::from(under));
            return runtime().block_on(async {
                store
                    .list(prefix.as_ref())
                    .map_ok(|m| (m.location.to_string(), m.size))
                    .try_collect()
                    .await
                    .expect("listing the bucket")
            });
        }
        let root = self.data_dir.join("objects");
        fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else if let Ok(m) = e.metadata() {
                    let key = p.strip_prefix(root).expect("under root");
                    out.push((key.display().to_string(), m.len()));
                }
            }
        }
        let mut out = Vec::new();
        walk(&root, &root.join(under), &mut out);
        out
    }

    /// Total bytes of the blobs under `under`.
    pub fn blob_bytes(&self, under: &str) -> u64 {
        self.blobs(under).iter().map(|(_, n)| n).sum()
    }

    /// A blob's stored bytes.
    pub fn read_blob(&self, key: &str) -> Vec<u8> {
        if let Some(store) = self.s3() {
            use object_store::ObjectStoreExt as _;
            return runtime().block_on(async {
                let got = store.get(&object_store::path::Path::from(key)).await;
                got.expect("get").bytes().await.expect("read").to_vec()
            });
        }
        std::fs::read(self.data_dir.join("objects").join(key)).expect("read blob")
    }

    /// Replaces a blob's bytes behind the server's back, as a malicious operator would.
    pub fn write_blob(&self, key: &str, data: &[u8]) {
        if let Some(store) = self.s3() {
            use object_store::ObjectStoreExt as _;
            let payload = object_store::PutPayload::from(data.to_vec());
            runtime()
                .block_on(store.put(&object_store::path::Path::from(key), payload))
                .expect("put");
            return;
        }
        std::fs::write(self.data_dir.join("objects").join(key), data).expect("write blob");
    }

    /// Deletes a blob behind the server's back, as a failing disk or an operator would.
    pub fn delete_blob(&self, key: &str) {
        if let Some(store) = self.s3() {
            use object_store::ObjectStoreExt as _;
            runtime()
                .block_on(store.delete(&object_store::path::Path::from(key)))
                .expect("delete");
            return;
        }
        std::fs::remove_file(self.data_dir.join("objects").join(key)).expect("remove blob");
    }
}
