//! Where accounts sit in the organization, for the `[ous."ou-…"]` entries of the config files
//! (`vars::VarsConfig::needs_parents`): an account's parents, nearest first, ending with the
//! root. The streamed OU walk (`stream.rs`) records them as it goes; this module gives them to
//! the rest: the chain above one account or OU (`ListParents`, one call per level, each OU
//! asked once), and the whole tree walked once from the root for a listed run. Organizations
//! throttles hard, so every call here is made one at a time.

use std::collections::{BTreeMap, HashMap};

use crate::aws::{Account, Aws, AwsError};
use crate::resolver::walk_beneath;

/// Deeper than any organization: AWS allows five levels of OUs under the root. A chain that
/// goes on longer is a loop in what the API answered.
const MAX_DEPTH: usize = 16;

/// The note of a run whose accounts' places cannot be known (the organization cannot be
/// listed: `--sso-role` with the portal's accounts, or accounts named by ID without
/// Organizations access). AWS's message is escaped for the terminal: a note is printed as is.
pub fn unknown_note(why: &AwsError) -> String {
    format!(
        "the organization's tree cannot be read ({}): with [ous.\"…\"] entries in the config, no account can be given the variables and regions they may hold for it, so every target fails without running; give the caller organizations:ListRoots and organizations:ListParents, or run with a config without [ous] entries (--config FILE, or --no-config)",
        crate::untrusted::terminal(&why.to_string())
    )
}

/// Parents already asked: child ID → its parent ID. One run's accounts share their OUs, so
/// each OU is asked once.
#[derive(Debug, Default)]
pub struct Parents {
    known: HashMap<String, String>,
}

impl Parents {
    /// The chain above `child` (an account or an OU): its parent, the parent's parent, …,
    /// ending with the root (an `r-` ID).
    pub async fn chain<A: Aws>(&mut self, aws: &A, child: &str) -> Result<Vec<String>, AwsError> {
        let mut chain: Vec<String> = Vec::new();
        let mut node = child.to_owned();
        while chain.len() < MAX_DEPTH {
            let parent = match self.known.get(&node) {
                Some(parent) => parent.clone(),
                None => {
                    let parent = aws.list_parent(&node).await?;
                    self.known.insert(node.clone(), parent.clone());
                    parent
                }
            };
            chain.push(parent.clone());
            if parent.starts_with("r-") {
                return Ok(chain);
            }
            node = parent;
        }
        Err(AwsError::new(
            crate::aws::ErrorKind::Other,
            None,
            format!("the parents of {child} go deeper than {MAX_DEPTH} levels"),
        ))
    }
}

/// The whole organization walked once from its roots (`ListRoots`, then
/// `ListOrganizationalUnitsForParent` and `ListAccountsForParent` for every OU): each
/// account's parents, by account ID.
pub async fn whole<A: Aws>(aws: &A) -> Result<BTreeMap<String, Vec<String>>, AwsError> {
    let mut places = BTreeMap::new();
    for root in aws.list_roots().await? {
        let found = walk_beneath(aws, vec![root], MAX_DEPTH).await;
        for (account, chain) in found.map_err(|(_, e)| e)? {
            places.insert(account.id, chain);
        }
    }
    Ok(places)
}

/// Gives each of a listed run's `accounts` its parents: by `ListParents` when they were named
/// by ID (`by_id`: they are few), else by one walk of the whole tree. An organization that
/// cannot be listed leaves them unknown, with the note that says so.
pub async fn place<A: Aws>(
    aws: &A,
    accounts: &mut [Account],
    by_id: bool,
) -> anyhow::Result<Option<String>> {
    let found = if by_id {
        let mut parents = Parents::default();
        let mut found = BTreeMap::new();
        for account in accounts.iter() {
            match parents.chain(aws, &account.id).await {
                Ok(chain) => {
                    found.insert(account.id.clone(), chain);
                }
                Err(e) if found.is_empty() && e.cannot_list_organization() => {
                    return Ok(Some(unknown_note(&e)));
                }
                Err(e) => return Err(place_failed(e, "ListParents")),
            }
        }
        found
    } else {
        match whole(aws).await {
            Ok(found) => found,
            Err(e) if e.cannot_list_organization() => return Ok(Some(unknown_note(&e))),
            Err(e) => {
                return Err(place_failed(
                    e,
                    "ListRoots, ListOrganizationalUnitsForParent, ListAccountsForParent",
                ));
            }
        }
    };
    for account in accounts {
        account.parents = found.get(&account.id).cloned();
    }
    Ok(None)
}

fn place_failed(e: AwsError, calls: &str) -> anyhow::Error {
    anyhow::Error::new(e).context(format!(
        "could not read where the accounts sit in the organization, which the [ous.\"…\"] entries of the config need (organizations:{calls})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;

    /// r-root → ou-a (1111) → ou-b (2222, 3333); 4444 at the root.
    fn org() -> FakeAws {
        let ids = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        FakeAws {
            tree: [
                (
                    "r-root".to_owned(),
                    (ids(&["ou-a"]), ids(&["444444444444"])),
                ),
                ("ou-a".to_owned(), (ids(&["ou-b"]), ids(&["111111111111"]))),
                (
                    "ou-b".to_owned(),
                    (vec![], ids(&["222222222222", "333333333333"])),
                ),
            ]
            .into(),
            ..FakeAws::default()
        }
    }

    fn chain(ids: &[&str]) -> Option<Vec<String>> {
        Some(ids.iter().map(|s| s.to_string()).collect())
    }

    #[tokio::test]
    async fn named_accounts_climb_to_the_root_asking_each_ou_once() {
        let aws = org();
        let mut accounts = [
            Account::bare("222222222222"),
            Account::bare("333333333333"),
            Account::bare("444444444444"),
        ];
        assert_eq!(place(&aws, &mut accounts, true).await.unwrap(), None);
        assert_eq!(accounts[0].parents, chain(&["ou-b", "ou-a", "r-root"]));
        assert_eq!(accounts[1].parents, chain(&["ou-b", "ou-a", "r-root"]));
        assert_eq!(accounts[2].parents, chain(&["r-root"]));
        let asked = aws.parent_calls.lock().unwrap().clone();
        assert_eq!(
            asked,
            [
                "222222222222",
                "ou-b",
                "ou-a",
                "333333333333",
                "444444444444"
            ],
            "ou-b and ou-a asked once"
        );
    }

    #[tokio::test]
    async fn a_listed_run_walks_the_tree_once_and_never_asks_per_account() {
        let aws = org();
        let mut accounts = [Account::bare("111111111111"), Account::bare("333333333333")];
        assert_eq!(place(&aws, &mut accounts, false).await.unwrap(), None);
        assert_eq!(accounts[0].parents, chain(&["ou-a", "r-root"]));
        assert_eq!(accounts[1].parents, chain(&["ou-b", "ou-a", "r-root"]));
        assert!(aws.parent_calls.lock().unwrap().is_empty());
    }

    #[test]
    fn the_note_escapes_the_aws_message_for_the_terminal() {
        let e = AwsError::new(
            crate::aws::ErrorKind::Denied,
            Some("AccessDenied"),
            "no\u{1b}[2J\nway",
        );
        let note = unknown_note(&e);
        assert!(!note.contains('\u{1b}') && !note.contains('\n'), "{note:?}");
        assert!(note.contains("AccessDenied: no"), "{note}");
    }

    #[tokio::test]
    async fn without_organizations_access_the_places_stay_unknown_with_a_note() {
        let mut aws = org();
        aws.deny_list_accounts = true;
        let mut accounts = [Account::bare("111111111111")];
        let note = place(&aws, &mut accounts, false).await.unwrap().unwrap();
        assert!(note.contains("tree cannot be read"), "{note}");
        assert_eq!(accounts[0].parents, None);
    }
}
