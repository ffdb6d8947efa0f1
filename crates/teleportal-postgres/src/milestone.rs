//! [`MilestoneStorage`] for [`PostgresStorage`]: each row keeps the metadata in the milestone
//! binary format (spec §13) and the snapshot beside it.

use async_trait::async_trait;
use bytes::Bytes;
use teleportal_storage::{DocumentId, Milestone, MilestoneMeta, MilestoneStorage, StorageError};

use crate::{PostgresStorage, execute, not_found, query, query_opt};

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl MilestoneStorage for PostgresStorage {
    async fn create_milestone(&self, milestone: Milestone) -> Result<(), StorageError> {
        let meta = milestone.meta.to_bytes();
        let client = self.client().await?;
        let inserted = execute(
            &client,
            "INSERT INTO milestones (document, id, meta, snapshot) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            &[
                &milestone.meta.document_id,
                &milestone.meta.id,
                &meta.as_ref(),
                &milestone.snapshot.as_ref(),
            ],
        )
        .await?;
        if inserted == 0 {
            return Err(StorageError::InvalidRequest {
                reason: format!("milestone {} already exists", milestone.meta.id),
            });
        }
        Ok(())
    }

    async fn milestones(
        &self,
        doc: &DocumentId,
        include_deleted: bool,
    ) -> Result<Vec<MilestoneMeta>, StorageError> {
        let client = self.client().await?;
        // Only the meta column: listing never reads a snapshot.
        let rows = query(
            &client,
            "SELECT meta FROM milestones WHERE document = $1",
            &[&doc.as_str()],
        )
        .await?;
        let mut metas = Vec::with_capacity(rows.len());
        for row in rows {
            let meta = decode_meta(row.get(0))?;
            if include_deleted || meta.deleted_at.is_none() {
                metas.push(meta);
            }
        }
        // Sorted here, not in SQL: ids compare bytewise, whatever the database's collation.
        metas.sort_by(|a, b| {
            a.created_at
                .total_cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(metas)
    }

    async fn milestone(
        &self,
        doc: &DocumentId,
        id: &str,
    ) -> Result<Option<Milestone>, StorageError> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT meta, snapshot FROM milestones WHERE document = $1 AND id = $2",
            &[&doc.as_str(), &id],
        )
        .await?;
        row.map(|row| {
            Ok(Milestone {
                meta: decode_meta(row.get(0))?,
                snapshot: Bytes::from(row.get::<_, Vec<u8>>(1)),
            })
        })
        .transpose()
    }

    async fn update_milestone(&self, meta: MilestoneMeta) -> Result<(), StorageError> {
        let record = meta.to_bytes();
        let client = self.client().await?;
        let updated = execute(
            &client,
            "UPDATE milestones SET meta = $3 WHERE document = $1 AND id = $2",
            &[&meta.document_id, &meta.id, &record.as_ref()],
        )
        .await?;
        if updated == 0 {
            return Err(not_found("milestone", &meta.id));
        }
        Ok(())
    }

    async fn delete_milestone(&self, doc: &DocumentId, id: &str) -> Result<(), StorageError> {
        let client = self.client().await?;
        execute(
            &client,
            "DELETE FROM milestones WHERE document = $1 AND id = $2",
            &[&doc.as_str(), &id],
        )
        .await
        .map(drop)
    }

    /// Closes the connection pool (every kind of data): each acknowledged write is already
    /// committed, so there is nothing to finish.
    async fn close(&self) -> Result<(), StorageError> {
        self.pool.close();
        Ok(())
    }
}

fn decode_meta(record: Vec<u8>) -> Result<MilestoneMeta, StorageError> {
    MilestoneMeta::decode(Bytes::from(record)).map_err(|e| StorageError::Corrupt {
        reason: "stored milestone metadata does not decode",
        source: Some(Box::new(e)),
    })
}
