package iamfence

// DocumentWithPrefixes is Document for topics named exactly and for topic
// name prefixes: each prefix P gives the resource
// arn:PARTITION:kafka:REGION:ACCOUNT:topic/NAME/UUID/P*, which IAM matches
// against every topic whose name starts with P ('*' matches any run of
// characters; a topic name has neither '*' nor '?'). Such a resource also
// denies topics created later whose names start with P: the caller chooses
// prefixes that no topic it must not fence shares. A prefix holds only
// topic name characters and may be empty (every topic of the cluster).
// Resources are sorted and deduplicated; the errors are Document's
// (*ClusterARNError, *TopicNameError, ErrNoTopics, *TooLargeError, whose
// Topics and Fit then count resources).
func DocumentWithPrefixes(clusterARN string, topics, prefixes []string) (string, error) {
	prefix, err := topicPrefix(clusterARN)
	if err != nil {
		return "", err
	}
	if len(topics)+len(prefixes) == 0 {
		return "", ErrNoTopics
	}
	seen := map[string]bool{}
	var arns []string
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			arns = append(arns, a)
		}
	}
	for _, t := range topics {
		if err := checkTopic(t); err != nil {
			return "", err
		}
		add(prefix + t)
	}
	for _, p := range prefixes {
		if p != "" && (len(p) > maxTopicLen || !topicRe.MatchString(p)) {
			return "", &TopicNameError{Topic: p + "*", Problem: "a topic name prefix has only letters, digits, '.', '_' and '-'"}
		}
		add(prefix + p + "*")
	}
	return fitDocument(arns)
}
