//! [`MilestoneStorage`] for [`SqliteStorage`]: each row keeps the metadata in the milestone
//! binary format (spec §13) and the snapshot beside it.

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::OptionalExtension;
use teleportal_storage::milestone::sort_in_creation_order;
use teleportal_storage::{DocumentId, Milestone, MilestoneMeta, MilestoneStorage, StorageError};

use super::{SqliteStorage, not_found, sql};

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl MilestoneStorage for SqliteStorage {
    async fn create_milestone(&self, milestone: Milestone) -> Result<(), StorageError> {
        let meta = milestone.meta.to_bytes();
        self.write(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO milestones (document, id, meta, snapshot) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute((
                        &milestone.meta.document_id,
                        &milestone.meta.id,
                        meta.as_ref(),
                        milestone.snapshot.as_ref(),
                    ))
                })
                .map_err(sql)?;
            if inserted == 0 {
                return Err(StorageError::InvalidRequest {
                    reason: format!("milestone {} already exists", milestone.meta.id),
                });
            }
            Ok(())
        })
        .await
    }

    async fn milestones(
        &self,
        doc: &DocumentId,
        include_deleted: bool,
    ) -> Result<Vec<MilestoneMeta>, StorageError> {
        let doc = doc.clone();
        let records = self
            .read(move |conn| {
                // Only the meta column: listing never reads a snapshot.
                conn.prepare_cached("SELECT meta FROM milestones WHERE document = ?1")
                    .and_then(|mut s| {
                        s.query_map([doc.as_str()], |r| r.get::<_, Vec<u8>>(0))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(sql)
            })
            .await?;
        let mut metas = Vec::with_capacity(records.len());
        for record in records {
            let meta = decode_meta(record)?;
            if include_deleted || meta.deleted_at.is_none() {
                metas.push(meta);
            }
        }
        sort_in_creation_order(&mut metas);
        Ok(metas)
    }

    async fn milestone(
        &self,
        doc: &DocumentId,
        id: &str,
    ) -> Result<Option<Milestone>, StorageError> {
        let (doc, id) = (doc.clone(), id.to_owned());
        let record = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT meta, snapshot FROM milestones WHERE document = ?1 AND id = ?2",
                )
                .and_then(|mut s| {
                    s.query_row((doc.as_str(), &id), |r| {
                        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
                    })
                    .optional()
                })
                .map_err(sql)
            })
            .await?;
        record
            .map(|(meta, snapshot)| {
                Ok(Milestone {
                    meta: decode_meta(meta)?,
                    snapshot: Bytes::from(snapshot),
                })
            })
            .transpose()
    }

    async fn update_milestone(&self, meta: MilestoneMeta) -> Result<(), StorageError> {
        let record = meta.to_bytes();
        self.write(move |conn| {
            let updated = conn
                .prepare_cached("UPDATE milestones SET meta = ?3 WHERE document = ?1 AND id = ?2")
                .and_then(|mut s| s.execute((&meta.document_id, &meta.id, record.as_ref())))
                .map_err(sql)?;
            if updated == 0 {
                return Err(not_found("milestone", &meta.id));
            }
            Ok(())
        })
        .await
    }

    async fn delete_milestone(&self, doc: &DocumentId, id: &str) -> Result<(), StorageError> {
        let (doc, id) = (doc.clone(), id.to_owned());
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM milestones WHERE document = ?1 AND id = ?2")
                .and_then(|mut s| s.execute((doc.as_str(), &id)))
                .map(drop)
                .map_err(sql)
        })
        .await
    }

    /// Closes the whole database (every kind of data), as [`SqliteStorage::close`] does.
    async fn close(&self) -> Result<(), StorageError> {
        SqliteStorage::close(self).await
    }
}

fn decode_meta(record: Vec<u8>) -> Result<MilestoneMeta, StorageError> {
    MilestoneMeta::decode(Bytes::from(record)).map_err(|e| StorageError::Corrupt {
        reason: "stored milestone metadata does not decode",
        source: Some(Box::new(e)),
    })
}
