-- teleportal-postgres schema, version 1. Runs inside the migration transaction with
-- search_path set to the store's schema, so every name below lands there.

-- One row per document ever written, never deleted: a deleted document keeps `last_seq` (as
-- its `snapshot_seq`), so sequence numbers are never reused. Appends, compactions and deletes
-- of a document all take this row's lock first, which is what serializes them across nodes.
-- `snapshot_len` is NULL while there is no snapshot.
CREATE TABLE documents (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_seq BIGINT NOT NULL,
    snapshot_seq BIGINT NOT NULL,
    snapshot_len BIGINT,
    tail_updates BIGINT NOT NULL,
    tail_bytes BIGINT NOT NULL
);

-- Apart from `documents` so that an append, which rewrites the counters, never rewrites (or
-- reads) a large snapshot.
CREATE TABLE snapshots (
    doc BIGINT PRIMARY KEY REFERENCES documents (id),
    data BYTEA NOT NULL
);

-- The tail: keyed by the document's integer id, not its name, to keep each small row small.
CREATE TABLE updates (
    doc BIGINT NOT NULL REFERENCES documents (id),
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (doc, seq)
);

-- Finished files. `size` and `last_modified` hold a u64 bit for bit (they are never compared
-- in SQL); the id is the 32-byte Merkle root.
CREATE TABLE files (
    id BYTEA PRIMARY KEY,
    filename TEXT NOT NULL,
    size BIGINT NOT NULL,
    mime_type TEXT NOT NULL,
    last_modified BIGINT NOT NULL,
    encrypted BOOLEAN NOT NULL,
    chunk_size BIGINT NOT NULL,
    chunk_count BIGINT NOT NULL,
    document TEXT
);
CREATE INDEX files_by_document ON files (document) WHERE document IS NOT NULL;
CREATE TABLE file_chunks (
    file BYTEA NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    idx BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (file, idx)
);

-- Milestones: the metadata in the milestone binary format (spec section 13), the snapshot
-- beside it.
CREATE TABLE milestones (
    document TEXT NOT NULL,
    id TEXT NOT NULL,
    meta BYTEA NOT NULL,
    snapshot BYTEA NOT NULL,
    PRIMARY KEY (document, id)
);

-- Upload sessions: the declared file, when the session started (microseconds since the Unix
-- epoch, from the node that began it), and a row per received chunk.
CREATE TABLE uploads (
    id BYTEA PRIMARY KEY,
    filename TEXT NOT NULL,
    size BIGINT NOT NULL,
    mime_type TEXT NOT NULL,
    last_modified BIGINT NOT NULL,
    encrypted BOOLEAN NOT NULL,
    chunk_size BIGINT NOT NULL,
    chunk_count BIGINT NOT NULL,
    document TEXT,
    started_at_us BIGINT NOT NULL
);
CREATE INDEX uploads_by_start ON uploads (started_at_us);
CREATE TABLE upload_chunks (
    upload BYTEA NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    idx BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (upload, idx)
);
