//! Document identifiers.

use std::fmt;
use std::sync::Arc;

/// The name of a document as storage sees it (for Teleportal, the namespaced `room/doc` id).
///
/// Cheap to clone: the name is shared.
///
/// ```
/// use teleportal_storage::DocumentId;
///
/// let id = DocumentId::from("room-1/notes");
/// assert_eq!(id.as_str(), "room-1/notes");
/// assert_eq!(id.to_string(), "room-1/notes");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId(Arc<str>);

impl DocumentId {
    /// A document id from any string.
    pub fn new(name: impl AsRef<str>) -> Self {
        DocumentId(Arc::from(name.as_ref()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for DocumentId {
    fn from(name: &str) -> Self {
        DocumentId::new(name)
    }
}

impl From<String> for DocumentId {
    fn from(name: String) -> Self {
        DocumentId(Arc::from(name))
    }
}

impl AsRef<str> for DocumentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
