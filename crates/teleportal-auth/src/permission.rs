//! Document permissions granted by a token's `documentAccess` claim (spec §15.2).

use crate::TokenClaims;

/// A permission a message may require on a document.
///
/// `Admin` in a token satisfies any requirement.
///
/// ```
/// use teleportal_auth::Permission;
///
/// assert_eq!(Permission::from_name("write"), Some(Permission::Write));
/// assert_eq!(Permission::Write.as_str(), "write");
/// assert_eq!(Permission::from_name("owner"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read the document (sync-step-1, sync-done, most RPCs).
    Read,
    /// Change the document (sync-step-2, update, milestone and file writes).
    Write,
    /// Comment on the document.
    Comment,
    /// Suggest changes to the document.
    Suggest,
    /// Everything.
    Admin,
}

impl Permission {
    /// Every permission, in the reference's order of its union type.
    pub const ALL: [Permission; 5] = [
        Permission::Admin,
        Permission::Write,
        Permission::Read,
        Permission::Comment,
        Permission::Suggest,
    ];

    /// The name tokens use for this permission.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Comment => "comment",
            Permission::Suggest => "suggest",
            Permission::Admin => "admin",
        }
    }

    /// The permission a token names `name`, if it is one of the five.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `claims` grant `required` on `document`, as the reference's
/// `hasDocumentPermission` decides:
///
/// * no `documentAccess` claim: allowed (the token restricts nothing);
/// * an exclusion (`!pattern`) matching `document`: denied, whatever it lists;
/// * otherwise allowed iff an inclusion pattern matches and lists `required` or `admin`.
///
/// `document` is the plain name from the envelope, not the room-prefixed id. A pattern
/// without `*` must equal the name; each `*` matches any run of characters, including none
/// and including newlines (so `room/*` matches names starting with `room/`, and `*` every
/// name); every other character is literal.
///
/// ```
/// use teleportal_auth::{DocumentAccess, Permission, TokenConfig, has_document_permission};
///
/// let access = vec![
///     DocumentAccess::new("room-1/*", &[Permission::Read, Permission::Write]),
///     DocumentAccess::new("!room-1/private", &[]),
/// ];
/// let claims = TokenConfig::new("secret").claims("alice", "room-1", Some(access), 0);
/// assert!(has_document_permission(&claims, "room-1/notes", Permission::Write));
/// assert!(!has_document_permission(&claims, "room-1/notes", Permission::Admin));
/// assert!(!has_document_permission(&claims, "room-1/private", Permission::Read));
/// assert!(!has_document_permission(&claims, "room-10/x", Permission::Read));
/// ```
pub fn has_document_permission(claims: &TokenClaims, document: &str, required: Permission) -> bool {
    let Some(access) = &claims.document_access else {
        return true;
    };
    let mut included = false;
    for entry in access {
        if let Some(excluded) = entry.pattern.strip_prefix('!') {
            if pattern_matches(excluded, document) {
                return false;
            }
        } else if !included && pattern_matches(&entry.pattern, document) {
            included = entry
                .permissions
                .iter()
                .any(|p| p == required.as_str() || p == Permission::Admin.as_str());
        }
    }
    included
}

/// Glob match where `*` is the only metacharacter and matches any run of characters.
///
/// Exact, `*` and `prefix/*` patterns of the spec are special cases of this. Runs in
/// O(pattern × document) at worst (leftmost match of each fixed piece), never backtracking
/// exponentially on hostile patterns.
fn pattern_matches(pattern: &str, document: &str) -> bool {
    let mut pieces = pattern.split('*');
    // `split` always yields at least one piece.
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = document.strip_prefix(first) else {
        return false;
    };
    let Some(last) = pieces.next_back() else {
        // No `*`: the whole name must be the pattern.
        return rest.is_empty();
    };
    for middle in pieces {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DocumentAccess, TokenConfig};

    fn claims(access: Option<Vec<DocumentAccess>>) -> TokenClaims {
        TokenConfig::new("s").claims("u", "r", access, 0)
    }

    #[test]
    fn exact_pattern_matches_only_the_same_name() {
        assert!(pattern_matches("exact", "exact"));
        assert!(!pattern_matches("exact", "exactly"));
        assert!(!pattern_matches("exact", "exac"));
    }

    #[test]
    fn star_alone_matches_everything() {
        assert!(pattern_matches("*", ""));
        assert!(pattern_matches("*", "a/b\nc"));
    }

    #[test]
    fn prefix_pattern_needs_the_slash() {
        assert!(pattern_matches("room-1/*", "room-1/notes"));
        assert!(pattern_matches("room-1/*", "room-1/"));
        assert!(!pattern_matches("room-1/*", "room-1"));
        assert!(!pattern_matches("room-1/*", "room-10/x"));
    }

    #[test]
    fn inner_star_matches_any_run_and_dots_are_literal() {
        assert!(pattern_matches("a*b.c", "ab.c"));
        assert!(pattern_matches("a*b.c", "axyzb.c"));
        assert!(pattern_matches("a*b.c", "a\nb.c"));
        assert!(!pattern_matches("a*b.c", "axb-c"));
    }

    #[test]
    fn prefix_and_suffix_may_not_overlap() {
        assert!(!pattern_matches("ab*ba", "aba"));
        assert!(pattern_matches("ab*ba", "abba"));
        assert!(pattern_matches("a*b*c", "a-b-b-c"));
        assert!(!pattern_matches("a*b*c", "a-c-b"));
    }

    #[test]
    fn no_document_access_allows_everything() {
        assert!(has_document_permission(
            &claims(None),
            "x",
            Permission::Admin
        ));
    }

    #[test]
    fn empty_document_access_allows_nothing() {
        assert!(!has_document_permission(
            &claims(Some(vec![])),
            "x",
            Permission::Read
        ));
    }

    #[test]
    fn exclusion_wins_over_admin_inclusion() {
        let access = vec![
            DocumentAccess::new("*", &[Permission::Admin]),
            DocumentAccess::new("!secret", &[Permission::Admin]),
        ];
        let c = claims(Some(access));
        assert!(!has_document_permission(&c, "secret", Permission::Read));
        assert!(has_document_permission(&c, "public", Permission::Write));
    }

    #[test]
    fn admin_satisfies_any_requirement() {
        let c = claims(Some(vec![DocumentAccess::new(
            "adm/*",
            &[Permission::Admin],
        )]));
        for p in Permission::ALL {
            assert!(has_document_permission(&c, "adm/x", p), "{p}");
        }
    }

    #[test]
    fn later_inclusion_can_grant_what_an_earlier_one_lacks() {
        let access = vec![
            DocumentAccess::new("doc", &[Permission::Read]),
            DocumentAccess::new("d*", &[Permission::Write]),
        ];
        assert!(has_document_permission(
            &claims(Some(access)),
            "doc",
            Permission::Write
        ));
    }

    #[test]
    fn unknown_permission_names_grant_nothing() {
        let access = vec![DocumentAccess {
            pattern: "*".into(),
            permissions: vec!["owner".into()],
        }];
        assert!(!has_document_permission(
            &claims(Some(access)),
            "x",
            Permission::Read
        ));
    }
}
