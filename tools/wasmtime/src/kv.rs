//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2` over one in-process map
//! shared by all requests and instances.
//!
//! Semantics follow Spin's default (SQLite-backed) store:
//! * `store::open(name)` accepts any name; buckets are created on first open.
//! * `atomics::increment` stores the counter as an 8-byte little-endian i64,
//!   starts from 0 for a missing key, returns the new value, and fails with
//!   `error::other` if the existing value is not 8 bytes (or on overflow).
//! * CAS: `cas::new` records no value; `cas.current()` reads the value and
//!   records it as the expected one; `swap` succeeds iff the stored value
//!   still equals the recorded one (`none` = key must be absent). On failure
//!   it returns `cas-failed` with a fresh CAS handle whose expected value is
//!   the latest one.
//! * `list-keys` returns all keys at once; a non-`none` cursor is an error.
//!
//! Every operation holds the mutex for its whole read-modify-write, so
//! increments and swaps are atomic across concurrent requests.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use wasmtime::component::Resource;

use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::State;

type Bucket = HashMap<String, Vec<u8>>;

/// bucket name -> (key -> value)
#[derive(Default)]
pub struct KvMap(Mutex<HashMap<String, Bucket>>);

impl KvMap {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Bucket>> {
        // A poisoned lock only means another request panicked mid-operation;
        // the map itself is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a value before any request runs (`--kv`).
    pub fn seed(&self, bucket: &str, key: String, value: Vec<u8>) {
        self.with_bucket(bucket, |b| b.insert(key, value));
    }

    /// Run `f` on the named bucket with the global lock held.
    fn with_bucket<R>(&self, bucket: &str, f: impl FnOnce(&mut Bucket) -> R) -> R {
        let mut map = self.lock();
        f(map.entry(bucket.to_string()).or_default())
    }
}

/// Host representation of a `wasi:keyvalue/store.bucket`.
pub struct BucketHandle {
    name: String,
}

/// Host representation of a `wasi:keyvalue/atomics.cas`.
pub struct CasHandle {
    bucket: String,
    key: String,
    /// The value observed by the last `current()` call (`None` = absent or
    /// never read).
    expected: Option<Vec<u8>>,
}

type KvResult<T> = wasmtime::Result<Result<T, store::Error>>;

impl State {
    fn bucket_name(&self, bucket: &Resource<BucketHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.name.clone())
    }
}

impl store::Host for State {
    fn open(&mut self, identifier: String) -> KvResult<Resource<BucketHandle>> {
        self.shared.kv.with_bucket(&identifier, |_| ());
        Ok(Ok(self.table.push(BucketHandle { name: identifier })?))
    }
}

impl store::HostBucket for State {
    fn get(&mut self, bucket: Resource<BucketHandle>, key: String) -> KvResult<Option<Vec<u8>>> {
        let name = self.bucket_name(&bucket)?;
        Ok(Ok(self.shared.kv.with_bucket(&name, |b| b.get(&key).cloned())))
    }

    fn set(&mut self, bucket: Resource<BucketHandle>, key: String, value: Vec<u8>) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        self.shared.kv.with_bucket(&name, |b| b.insert(key, value));
        Ok(Ok(()))
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        self.shared.kv.with_bucket(&name, |b| b.remove(&key));
        Ok(Ok(()))
    }

    fn exists(&mut self, bucket: Resource<BucketHandle>, key: String) -> KvResult<bool> {
        let name = self.bucket_name(&bucket)?;
        Ok(Ok(self.shared.kv.with_bucket(&name, |b| b.contains_key(&key))))
    }

    fn list_keys(&mut self, bucket: Resource<BucketHandle>, cursor: Option<String>) -> KvResult<store::KeyResponse> {
        if cursor.is_some() {
            return Ok(Err(store::Error::Other("list_keys: cursor not supported".to_string())));
        }
        let name = self.bucket_name(&bucket)?;
        let mut keys = self.shared.kv.with_bucket(&name, |b| b.keys().cloned().collect::<Vec<_>>());
        keys.sort();
        Ok(Ok(store::KeyResponse { keys, cursor: None }))
    }

    fn drop(&mut self, bucket: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

fn read_counter(value: Option<&Vec<u8>>) -> Result<i64, store::Error> {
    match value {
        None => Ok(0),
        Some(v) => {
            let bytes: [u8; 8] = v.as_slice().try_into().map_err(|_| {
                store::Error::Other(format!(
                    "increment: existing value is {} bytes, not an 8-byte little-endian i64",
                    v.len()
                ))
            })?;
            Ok(i64::from_le_bytes(bytes))
        }
    }
}

impl atomics::Host for State {
    fn increment(&mut self, bucket: Resource<BucketHandle>, key: String, delta: i64) -> KvResult<i64> {
        let name = self.bucket_name(&bucket)?;
        Ok(self.shared.kv.with_bucket(&name, |b| {
            let current = read_counter(b.get(&key))?;
            let new =
                current.checked_add(delta).ok_or_else(|| store::Error::Other("increment: i64 overflow".to_string()))?;
            b.insert(key, new.to_le_bytes().to_vec());
            Ok(new)
        }))
    }

    fn swap(&mut self, cas: Resource<CasHandle>, value: Vec<u8>) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let cas = self.table.delete(cas)?;
        let outcome = self.shared.kv.with_bucket(&cas.bucket, |b| {
            let current = b.get(&cas.key);
            if current == cas.expected.as_ref() {
                b.insert(cas.key.clone(), value);
                Ok(())
            } else {
                Err(current.cloned())
            }
        });
        match outcome {
            Ok(()) => Ok(Ok(())),
            Err(latest) => {
                let retry = self.table.push(CasHandle { bucket: cas.bucket, key: cas.key, expected: latest })?;
                Ok(Err(atomics::CasError::CasFailed(retry)))
            }
        }
    }
}

impl atomics::HostCas for State {
    fn new(&mut self, bucket: Resource<BucketHandle>, key: String) -> KvResult<Resource<CasHandle>> {
        let name = self.bucket_name(&bucket)?;
        Ok(Ok(self.table.push(CasHandle { bucket: name, key, expected: None })?))
    }

    fn current(&mut self, cas: Resource<CasHandle>) -> KvResult<Option<Vec<u8>>> {
        let handle = self.table.get(&cas)?;
        let (bucket, key) = (handle.bucket.clone(), handle.key.clone());
        let value = self.shared.kv.with_bucket(&bucket, |b| b.get(&key).cloned());
        self.table.get_mut(&cas)?.expected = value.clone();
        Ok(Ok(value))
    }

    fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for State {
    fn get_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        let name = self.bucket_name(&bucket)?;
        Ok(Ok(self.shared.kv.with_bucket(&name, |b| {
            keys.into_iter()
                .map(|k| {
                    let v = b.get(&k).cloned();
                    (k, v)
                })
                .collect()
        })))
    }

    fn set_many(&mut self, bucket: Resource<BucketHandle>, key_values: Vec<(String, Vec<u8>)>) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        self.shared.kv.with_bucket(&name, |b| b.extend(key_values));
        Ok(Ok(()))
    }

    fn delete_many(&mut self, bucket: Resource<BucketHandle>, keys: Vec<String>) -> KvResult<()> {
        let name = self.bucket_name(&bucket)?;
        self.shared.kv.with_bucket(&name, |b| {
            for k in &keys {
                b.remove(k);
            }
        });
        Ok(Ok(()))
    }
}
