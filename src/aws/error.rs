//! AWS errors as cove sees them: an [`AwsError`] of a known [`ErrorKind`] from whatever the SDK
//! answered, with a sentence a person can act on where AWS sent no code. The SDK's client
//! ([`super::sdk`]) and the IAM Identity Center portal ([`super::portal`]) both read their errors
//! here.

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use super::{AwsError, ErrorKind};

/// The kind of an AWS error code: the one place cove reads code strings.
fn kind_of(code: &str) -> ErrorKind {
    match code {
        // ForbiddenException: the portal's answer for a permission set the user lacks there.
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "ForbiddenException" => ErrorKind::Denied,
        "AWSOrganizationsNotInUseException" => ErrorKind::NoOrganization,
        "ParentNotFoundException"
        | "ChildNotFoundException"
        | "OrganizationalUnitNotFoundException"
        | "AccountNotFoundException"
        | "InvalidInputException" => ErrorKind::NotFound,
        "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => ErrorKind::Throttled,
        _ => ErrorKind::Other,
    }
}

pub(super) fn aws_error<E, R>(err: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(code) = err.code() {
        return AwsError::new(
            kind_of(code),
            Some(code),
            err.message().unwrap_or("(no message from AWS)"),
        );
    }
    // Each cause's own sentence, never a Debug form: that of a response error holds the raw
    // response, and a credentials answer cove could not read has the keys in its body.
    let detail = causes(&err);
    unlabeled(&err).with_detail(detail)
}

/// An error AWS sent no code for: missing or broken credentials, or no connection. The message
/// is a sentence with the next step; the chain of causes goes to `detail`.
fn unlabeled(err: &(dyn std::error::Error + 'static)) -> AwsError {
    use aws_credential_types::provider::error::CredentialsError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(creds) = e.downcast_ref::<CredentialsError>() {
            return match creds {
                CredentialsError::CredentialsNotLoaded(_) => {
                    AwsError::new(ErrorKind::NoCredentials, None, NO_CREDENTIALS)
                }
                // The instance metadata service is the chain's last source: an error from it
                // (a 403 where IMDS is turned off) means no other source had credentials.
                // Its own words are kept for `-v` (the detail).
                other if from_imds(other) => {
                    AwsError::new(ErrorKind::NoCredentials, None, NO_CREDENTIALS)
                }
                other => AwsError::new(
                    ErrorKind::CredentialsFailed,
                    None,
                    format!(
                        "the AWS credentials could not be loaded: {}. If this profile uses IAM Identity Center, run `aws sso login`",
                        innermost(other).trim_end_matches('.')
                    ),
                ),
            };
        }
        if let Some(connector) =
            e.downcast_ref::<aws_smithy_runtime_api::client::result::ConnectorError>()
            && (connector.is_io() || connector.is_timeout())
        {
            return AwsError::new(
                ErrorKind::Unreachable,
                None,
                format!(
                    "could not reach AWS ({}); check the network, a proxy, or AWS_ENDPOINT_URL",
                    innermost(connector)
                ),
            );
        }
        source = e.source();
    }
    AwsError::new(ErrorKind::Other, None, innermost(err))
}

/// What cove says when the SDK's credential chain found nothing: where it looked, in the
/// chain's order, and what to run.
const NO_CREDENTIALS: &str = "no AWS credentials found. Looked in: the environment \
    (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); the profile (--profile, else AWS_PROFILE, \
    else `default`) in ~/.aws/config and ~/.aws/credentials, with its keys, role, \
    credential_process, IAM Identity Center (SSO) or `aws login` session; a web identity token \
    (AWS_WEB_IDENTITY_TOKEN_FILE); the container credentials endpoint \
    (AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI); the EC2 instance metadata service \
    (IMDS). Run `aws configure`, `aws sso login --profile NAME` or `aws login`, then set \
    AWS_PROFILE or give --profile NAME (-v shows the SDK's own answer)";

/// Whether an error's chain holds an answer of the EC2 instance metadata service.
fn from_imds(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<aws_config::imds::client::error::ImdsError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Every cause in an error's chain, each by its `Display`, joined with `: `.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// The last cause in an error's chain: usually the one that says what went wrong.
pub(super) fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_the_kinds_cove_branches_on() {
        assert_eq!(kind_of("AccessDenied"), ErrorKind::Denied);
        assert_eq!(kind_of("AccessDeniedException"), ErrorKind::Denied);
        assert_eq!(
            kind_of("AWSOrganizationsNotInUseException"),
            ErrorKind::NoOrganization
        );
        assert_eq!(kind_of("ParentNotFoundException"), ErrorKind::NotFound);
        assert_eq!(kind_of("TooManyRequestsException"), ErrorKind::Throttled);
        assert_eq!(kind_of("Throttling"), ErrorKind::Throttled);
        assert_eq!(kind_of("ServiceException"), ErrorKind::Other);
    }
}
