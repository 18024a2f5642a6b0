//! `--filter-name`, `--filter-email` and `--filter-tag`: narrowing the resolved accounts. All
//! filters must match (AND). Tags are fetched only when a tag filter is given, one call per
//! account, a few at a time, since Organizations throttles hard.

use anyhow::Context;
use futures::{StreamExt, TryStreamExt, stream};
use regex::Regex;

use crate::aws::{Account, Aws};

/// How many ListTagsForResource calls run at once (the tag filter's, and `{tag.KEY}`'s across a
/// run).
pub(crate) const TAG_CONCURRENCY: usize = 4;

#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub name: Option<Regex>,
    pub email: Option<Regex>,
    /// `KEY=VALUE` pairs; every one must be on the account.
    pub tags: Vec<(String, String)>,
}

/// `--filter-name` / `--filter-email`: a regular expression.
pub fn parse_regex(value: &str) -> Result<Regex, String> {
    Regex::new(value).map_err(|e| format!("`{value}` is not a valid regular expression: {e}"))
}

/// `--filter-tag`: `KEY=VALUE` (the value may be empty, the key may not).
pub fn parse_tag(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, tag_value)) if !key.is_empty() => Ok((key.to_owned(), tag_value.to_owned())),
        _ => Err(format!(
            "`{value}` is not a tag filter; expected KEY=VALUE, such as env=prod"
        )),
    }
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none() && self.tags.is_empty()
    }

    /// Whether the name and email filters (not the tag filters) keep the account.
    pub fn matches_text(&self, account: &Account) -> bool {
        let test = |re: &Option<Regex>, field: &Option<String>| match re {
            None => true,
            Some(re) => field.as_deref().is_some_and(|v| re.is_match(v)),
        };
        test(&self.name, &account.name) && test(&self.email, &account.email)
    }

    /// Keeps the accounts that carry every `--filter-tag` (the name and email filters were
    /// applied by admission). Returns the kept accounts and how many were left out; `seen` is
    /// told every account's tags as they were read, so nothing reads them again.
    pub async fn apply_tags<A: Aws>(
        &self,
        aws: &A,
        accounts: Vec<Account>,
        seen: impl Fn(&str, &[(String, String)]),
    ) -> anyhow::Result<(Vec<Account>, u64)> {
        if self.tags.is_empty() {
            return Ok((accounts, 0));
        }
        let before = accounts.len();
        let tagged: Vec<(Account, Vec<(String, String)>)> = stream::iter(accounts)
            .map(|account| async move {
                let tags = aws.list_account_tags(&account.id).await.with_context(|| {
                    format!("could not read the tags of account {}", account.id)
                })?;
                anyhow::Ok((account, tags))
            })
            .buffered(TAG_CONCURRENCY)
            .try_collect()
            .await?;
        for (account, tags) in &tagged {
            seen(&account.id, tags);
        }
        let kept: Vec<Account> = tagged
            .into_iter()
            .filter(|(_, tags)| self.tags.iter().all(|wanted| tags.contains(wanted)))
            .map(|(account, _)| account)
            .collect();
        let left_out = (before - kept.len()) as u64;
        Ok((kept, left_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::FakeAws;

    #[tokio::test]
    async fn filters_are_anded_and_tags_are_read_once_per_remaining_account() {
        let aws = FakeAws {
            tags: [
                ("1".to_owned(), vec![("env".to_owned(), "prod".to_owned())]),
                ("2".to_owned(), vec![("env".to_owned(), "dev".to_owned())]),
            ]
            .into(),
            ..FakeAws::default()
        };
        let accounts = vec![
            FakeAws::account("1", "team-prod", "ACTIVE"),
            FakeAws::account("2", "team-dev", "ACTIVE"),
            FakeAws::account("3", "other", "ACTIVE"),
        ];
        let filters = Filters {
            name: Some(parse_regex("^team-").unwrap()),
            email: None,
            tags: vec![parse_tag("env=prod").unwrap()],
        };
        let named: Vec<Account> = accounts
            .into_iter()
            .filter(|a| filters.matches_text(a))
            .collect();
        let (kept, left_out) = filters.apply_tags(&aws, named, |_, _| {}).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].id, "1");
        assert_eq!(left_out, 1);
        assert_eq!(aws.tag_calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn bad_filters_name_the_value() {
        assert!(parse_regex("(").unwrap_err().contains("`(`"));
        assert!(parse_tag("novalue").unwrap_err().contains("novalue"));
        assert!(parse_tag("=x").is_err());
        assert_eq!(parse_tag("k="), Ok(("k".into(), String::new())));
    }
}
