//! Checks of the [`MilestoneStorage`] contract.

use bytes::Bytes;

use crate::milestone::{CreatedBy, CreatorKind};
use crate::{DocumentId, Milestone, MilestoneMeta, MilestoneStorage, StorageError};

const DOC: &str = "conformance/milestones";

fn milestone(doc: &str, id: &str, created_at: f64) -> Milestone {
    let creator = CreatedBy {
        kind: CreatorKind::User,
        id: "alice".into(),
    };
    Milestone {
        meta: MilestoneMeta::new(doc, id, format!("Milestone {id}"), created_at, creator),
        snapshot: Bytes::from(format!("snapshot of {doc}/{id}").into_bytes()),
    }
}

async fn create<S: MilestoneStorage>(storage: &S, milestone: &Milestone) {
    storage
        .create_milestone(milestone.clone())
        .await
        .unwrap_or_else(|e| panic!("create_milestone {} failed: {e:?}", milestone.meta.id));
}

async fn list<S: MilestoneStorage>(storage: &S, doc: &str, include_deleted: bool) -> Vec<String> {
    storage
        .milestones(&DocumentId::from(doc), include_deleted)
        .await
        .expect("milestones")
        .into_iter()
        .map(|m| m.id)
        .collect()
}

async fn get<S: MilestoneStorage>(storage: &S, doc: &str, id: &str) -> Option<Milestone> {
    storage
        .milestone(&DocumentId::from(doc), id)
        .await
        .expect("milestone")
}

async fn update<S: MilestoneStorage>(storage: &S, meta: &MilestoneMeta) {
    storage
        .update_milestone(meta.clone())
        .await
        .unwrap_or_else(|e| panic!("update_milestone {} failed: {e:?}", meta.id));
}

pub(super) async fn milestones_list_in_creation_order<S: MilestoneStorage>(storage: S) {
    // Created out of order, with a tie on created_at broken by id.
    let all = [
        milestone(DOC, "m-late", 3_000.0),
        milestone(DOC, "m-b", 1_000.0),
        milestone(DOC, "m-middle", 2_000.0),
        milestone(DOC, "m-a", 1_000.0),
    ];
    for m in &all {
        create(&storage, m).await;
    }
    assert_eq!(
        list(&storage, DOC, false).await,
        ["m-a", "m-b", "m-middle", "m-late"],
        "not in creation order (created_at, then id)"
    );
    let listed = storage
        .milestones(&DocumentId::from(DOC), false)
        .await
        .expect("milestones");
    assert_eq!(
        listed[3], all[0].meta,
        "listed metadata differs from what was created"
    );
    for m in &all {
        assert_eq!(
            get(&storage, DOC, &m.meta.id).await.as_ref(),
            Some(m),
            "milestone {} did not round-trip",
            m.meta.id
        );
    }
    assert_eq!(get(&storage, DOC, "unknown").await, None);
}

pub(super) async fn duplicate_milestone_is_rejected<S: MilestoneStorage>(storage: S) {
    let original = milestone(DOC, "m1", 1_000.0);
    create(&storage, &original).await;
    let mut duplicate = milestone(DOC, "m1", 2_000.0);
    duplicate.snapshot = Bytes::from_static(b"another snapshot");
    match storage.create_milestone(duplicate).await {
        Err(StorageError::InvalidRequest { .. }) => {}
        other => panic!("a duplicate milestone gave {other:?}, not InvalidRequest"),
    }
    assert_eq!(
        get(&storage, DOC, "m1").await,
        Some(original),
        "a rejected duplicate changed the milestone"
    );
    assert_eq!(list(&storage, DOC, true).await, ["m1"]);
}

pub(super) async fn soft_deleted_milestone_is_listed_only_on_request<S: MilestoneStorage>(
    storage: S,
) {
    let kept = milestone(DOC, "m1", 1_000.0);
    let deleted = milestone(DOC, "m2", 2_000.0);
    create(&storage, &kept).await;
    create(&storage, &deleted).await;

    let mut meta = deleted.meta.clone();
    meta.deleted_at = Some(5_000.0);
    meta.deleted_by = Some("bob".into());
    update(&storage, &meta).await;

    assert_eq!(
        list(&storage, DOC, false).await,
        ["m1"],
        "a soft-deleted milestone is listed"
    );
    assert_eq!(list(&storage, DOC, true).await, ["m1", "m2"]);
    let listed = storage
        .milestones(&DocumentId::from(DOC), true)
        .await
        .expect("milestones");
    assert_eq!(
        listed[1], meta,
        "include_deleted lists other metadata than was stored"
    );
    assert_eq!(
        get(&storage, DOC, "m2").await,
        Some(Milestone {
            meta,
            snapshot: deleted.snapshot
        }),
        "a soft-deleted milestone is still readable, with its snapshot"
    );
}

pub(super) async fn restored_milestone_is_listed_again<S: MilestoneStorage>(storage: S) {
    let original = milestone(DOC, "m1", 1_000.0);
    create(&storage, &original).await;
    let mut meta = original.meta.clone();
    meta.deleted_at = Some(5_000.0);
    meta.deleted_by = Some("bob".into());
    update(&storage, &meta).await;
    assert!(list(&storage, DOC, false).await.is_empty());

    update(&storage, &original.meta).await;
    assert_eq!(
        list(&storage, DOC, false).await,
        ["m1"],
        "a restored milestone is not listed"
    );
    assert_eq!(get(&storage, DOC, "m1").await, Some(original));
}

pub(super) async fn renamed_milestone_keeps_its_snapshot<S: MilestoneStorage>(storage: S) {
    let original = milestone(DOC, "m1", 1_000.0);
    create(&storage, &original).await;
    let mut meta = original.meta.clone();
    meta.name = "Final draft".into();
    meta.lifecycle_state = Some("archived".into());
    update(&storage, &meta).await;

    let read = get(&storage, DOC, "m1")
        .await
        .expect("the milestone exists");
    assert_eq!(read.meta, meta, "the update did not replace the metadata");
    assert_eq!(
        read.snapshot, original.snapshot,
        "renaming changed the snapshot"
    );
    let listed = storage
        .milestones(&DocumentId::from(DOC), false)
        .await
        .expect("milestones");
    assert_eq!(listed, [meta], "the listing shows the old metadata");
}

pub(super) async fn updating_an_unknown_milestone_is_not_found<S: MilestoneStorage>(storage: S) {
    create(&storage, &milestone(DOC, "m1", 1_000.0)).await;
    // Unknown id, and a known id under another document.
    for unknown in [
        milestone(DOC, "m2", 1_000.0),
        milestone("conformance/other", "m1", 1_000.0),
    ] {
        match storage.update_milestone(unknown.meta.clone()).await {
            Err(StorageError::NotFound { .. }) => {}
            other => panic!(
                "updating unknown {}/{} gave {other:?}, not NotFound",
                unknown.meta.document_id, unknown.meta.id
            ),
        }
        assert_eq!(
            get(&storage, &unknown.meta.document_id, &unknown.meta.id).await,
            None,
            "updating an unknown milestone created it"
        );
    }
    assert_eq!(list(&storage, DOC, true).await, ["m1"]);
}

pub(super) async fn hard_deleted_milestone_is_gone<S: MilestoneStorage>(storage: S) {
    let doc = DocumentId::from(DOC);
    create(&storage, &milestone(DOC, "m1", 1_000.0)).await;
    create(&storage, &milestone(DOC, "m2", 2_000.0)).await;
    storage
        .delete_milestone(&doc, "m1")
        .await
        .expect("delete_milestone");
    assert_eq!(get(&storage, DOC, "m1").await, None);
    assert_eq!(
        list(&storage, DOC, true).await,
        ["m2"],
        "a deleted milestone is still listed"
    );
    storage
        .delete_milestone(&doc, "m1")
        .await
        .expect("deleting again is Ok");
    storage
        .delete_milestone(&doc, "unknown")
        .await
        .expect("deleting an unknown milestone is Ok");
    // The key is free again.
    create(&storage, &milestone(DOC, "m1", 3_000.0)).await;
    assert_eq!(list(&storage, DOC, false).await, ["m2", "m1"]);
}

pub(super) async fn milestones_are_isolated_between_documents<S: MilestoneStorage>(storage: S) {
    let (a, b) = ("conformance/a", "conformance/b");
    let in_a = milestone(a, "m1", 1_000.0);
    let in_b = milestone(b, "m1", 1_000.0);
    create(&storage, &in_a).await;
    create(&storage, &in_b).await; // Same id, other document: not a duplicate.
    create(&storage, &milestone(b, "m2", 2_000.0)).await;
    assert_eq!(list(&storage, a, true).await, ["m1"]);
    assert_eq!(list(&storage, b, true).await, ["m1", "m2"]);

    let mut renamed = in_a.meta.clone();
    renamed.name = "renamed in a".into();
    update(&storage, &renamed).await;
    assert_eq!(
        get(&storage, b, "m1").await,
        Some(in_b.clone()),
        "updating a's m1 changed b's"
    );

    storage
        .delete_milestone(&DocumentId::from(a), "m1")
        .await
        .expect("delete_milestone");
    assert_eq!(
        get(&storage, b, "m1").await,
        Some(in_b),
        "deleting a's m1 deleted b's"
    );
    assert!(list(&storage, a, true).await.is_empty());
    assert!(
        list(&storage, "conformance/", true).await.is_empty(),
        "a prefix of a document's name lists its milestones"
    );
}
