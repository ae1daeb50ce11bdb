// Package templatetest holds the checks on template.yaml and the state
// machine definition that CI runs with `go test ./...`:
//
//   - cfn-lint, `sam validate --lint`, `sam build` (one arm64 bootstrap per
//     function) and asl-validator, when the tools are installed
//     (scripts/install-template-tools.sh); missing tools skip the test unless
//     KMIG_REQUIRE_TOOLS=1, which CI sets;
//   - the environment contract: every variable a function's LoadConfig
//     reads is set by the template, and every one the template sets is read;
//   - least privilege: no IAM statement grants Resource "*" except for the
//     actions listed, with their reason, in iamStarAllowed;
//   - what a deployment on AWS relies on: every SNS topic is encrypted with
//     the stack's customer managed key, whose policy lets CloudWatch alarms
//     use it; mappings never start at LATEST; the provisioner custom
//     resource has a bounded ServiceTimeout and checks the mappings'
//     consumer group IDs.
//
// It has no code used at run time.
package templatetest
