//! Who is calling, and in which partition the run is: `sts:GetCallerIdentity` before any
//! target, and every region the run names checked against that partition. With `--sso-role` the
//! partition is the portal's, and the run may have no calling identity at all.

use anyhow::{Context, bail};

use crate::aws::{Aws, Caller};
use crate::regions;
use crate::resolver;

/// Who is calling (`sts:GetCallerIdentity`), and its partition, checked against every region
/// the run will use. With `--sso-role` (`portal_region` is the portal's region) the partition
/// is the portal's, and there may be no calling identity at all: it is then used for nothing,
/// and a selection that must walk OUs (`selection_walks_ous`) is an error here.
pub async fn identify<A: Aws>(
    aws: &A,
    regions: &[String],
    rerun: Option<&std::collections::BTreeMap<String, Vec<String>>>,
    portal_region: Option<&str>,
    selection_walks_ous: bool,
) -> anyhow::Result<Identified> {
    let (caller, partition) = match portal_region {
        Some(region) => {
            let caller = match aws.caller().await {
                Ok(caller) => caller,
                Err(e) => {
                    tracing::info!(error = %e, "no calling identity; the organization cannot be listed with it");
                    if selection_walks_ous {
                        if e.cannot_list_organization() {
                            return Err(resolver::cannot_walk(&e, true));
                        }
                        return Err(anyhow::Error::new(e).context(
                            "could not identify the calling credentials with sts:GetCallerIdentity, which the OUs of --target and --ignore need",
                        ));
                    }
                    Caller::default()
                }
            };
            let partition = regions::partition_of(region).unwrap_or("aws").to_owned();
            (caller, partition)
        }
        None => {
            let caller = aws.caller().await.context(
                "could not identify the calling credentials with sts:GetCallerIdentity; check AWS_PROFILE, --profile or your credentials",
            )?;
            let partition = caller
                .partition()
                .with_context(|| {
                    format!(
                        "cannot read a partition from the caller ARN `{}`",
                        caller.arn
                    )
                })?
                .to_owned();
            (caller, partition)
        }
    };
    let rerun_regions = rerun.iter().flat_map(|pairs| pairs.values().flatten());
    for region in regions.iter().chain(rerun_regions) {
        if let Some(p) = regions::partition_of(region)
            && p != partition
        {
            bail!(
                "region `{region}` is in partition `{p}`, but the credentials belong to partition `{partition}`"
            );
        }
    }
    Ok(Identified { caller, partition })
}

/// The calling identity and the partition of the run.
pub struct Identified {
    pub caller: Caller,
    pub partition: String,
}

/// The regions of the config's `[accounts."ID"]` and `[ous."ou-…"]` entries, when they apply
/// (the run's regions were not typed), checked against the run's partition before any role is
/// assumed; an error names the entry's place.
pub fn check_entry_regions(
    vars: &crate::vars::VarsConfig,
    typed: bool,
    partition: &str,
) -> anyhow::Result<()> {
    if typed {
        return Ok(());
    }
    let entries = vars.ous.values().chain(vars.accounts.values());
    for (names, place) in entries.filter_map(|e| e.regions.as_ref()) {
        for region in names {
            if let Some(p) = regions::partition_of(region)
                && p != partition
            {
                bail!(
                    "{place}: region `{region}` is in partition `{p}`, but the credentials belong to partition `{partition}`"
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::place::Place;
    use crate::vars::{Entry, VarsConfig};

    #[test]
    fn an_entrys_region_outside_the_callers_partition_names_the_entry() {
        let entry = Entry {
            vars: Default::default(),
            regions: Some((
                vec!["eu-west-1".to_owned(), "cn-north-1".to_owned()],
                Place {
                    path: "cove.toml".into(),
                    line: 7,
                    group: None,
                },
            )),
        };
        let vars = VarsConfig {
            accounts: [("111111111111".to_owned(), entry)].into(),
            ..Default::default()
        };
        let err = check_entry_regions(&vars, false, "aws")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cove.toml:7"), "{err}");
        assert!(
            err.contains("`cn-north-1` is in partition `aws-cn`"),
            "{err}"
        );
        assert!(
            check_entry_regions(&vars, false, "aws-cn").is_err(),
            "eu-west-1"
        );
        assert!(
            check_entry_regions(&vars, true, "aws").is_ok(),
            "typed regions: the entries do not apply"
        );
    }
}
