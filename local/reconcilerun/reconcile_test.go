package reconcilerun

import "testing"

func TestNewTopicArrivesComplete(t *testing.T) { scenarioNewTopic(t, kfakePair(t), "t1") }

func TestPartitionsAddedSeededBeforeMappingNotices(t *testing.T) {
	for _, late := range []bool{false, true} {
		name := map[bool]string{false: "from-start", true: "from-end"}[late]
		t.Run(name, func(t *testing.T) { scenarioPartitions(t, kfakePair(t), "t2", late, true) })
	}
}

func TestPartitionsAddedMappingNoticesFirst(t *testing.T) {
	t.Run("from-start", func(t *testing.T) { scenarioPartitions(t, kfakePair(t), "t3", false, false) })
	t.Run("from-end-gap-reported", func(t *testing.T) { scenarioPartitions(t, kfakePair(t), "t3", true, false) })
}

func TestPatternChangeAddsTopics(t *testing.T) { scenarioPatternChange(t, kfakePair(t), "t4") }

func TestDeletedSourceTopicReported(t *testing.T) { scenarioDeleted(t, kfakePair(t), "t5") }

func TestSteadyState(t *testing.T) { scenarioSteady(t, kfakePair(t), "t6") }

func TestDisabledMappingNeverEnabled(t *testing.T) { scenarioDisabled(t, kfakePair(t), "t7") }
