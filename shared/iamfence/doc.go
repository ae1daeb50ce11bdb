// Package iamfence fences an MSK source that uses IAM access control, for
// the cutover's "iam" fence kind.
//
// Kafka ACLs do not bind IAM principals, so such a source cannot be fenced
// with DENY WRITE ACLs. Instead an explicit-deny inline policy named
// [PolicyName] is put on each producer IAM role the operator names: it
// denies kafka-cluster:WriteData on the migrated topics' ARNs, and an
// explicit deny overrides any allow the role has.
//
// The steps:
//
//   - [TopicARNs] turns the source cluster ARN and the topics into topic
//     ARNs, and [Document] turns those into the policy JSON.
//   - [Plan] reads only: which roles would get the policy and which
//     already have it.
//   - [Apply] puts the policy on every role that lacks it and reads each one
//     back. It never overwrites an inline policy of the same name with a
//     different document, and on any failure it removes again what it put
//     in that call.
//   - [Remove] deletes exactly the policies it is given (what Apply
//     created) and verifies they are gone.
//
// What it does not guarantee: a producer that writes with a principal other
// than the named roles is not fenced. IAM is eventually consistent, and MSK
// applies a changed policy to authorization after a delay of its own; the
// read-back proves that IAM holds the policy, not that every broker already
// enforces it, so the cutover's later steps (quiet source, drain) remain
// the proof that nothing is written.
//
// Nothing in this package logs; errors name roles, policy names and ARNs,
// never credentials.
package iamfence
