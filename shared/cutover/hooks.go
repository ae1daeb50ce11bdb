package cutover

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

func (s *State) hookConfig(name string) HookConfig {
	switch name {
	case StepStopProducers:
		return s.Config.Hooks.StopProducers
	case StepStopConsumers:
		return s.Config.Hooks.StopConsumers
	case StepStartConsumers:
		return s.Config.Hooks.StartConsumers
	default:
		return s.Config.Hooks.StartProducers
	}
}

// HookAck is what a hook step returns; the state machine discards it.
type HookAck struct {
	Hook string `json:"hook"`
	Type string `json:"type"`
}

// HookEvent is the payload a lambda hook receives.
type HookEvent struct {
	Hook   string   `json:"hook"`
	Topics []string `json:"topics"`
	// Renames maps each renamed topic to its name on the target.
	Renames map[string]string `json:"renames,omitempty"`
	Groups  []string          `json:"groups"`
	Payload json.RawMessage   `json:"payload,omitempty"`
}

func (h *Handler) hook(ctx context.Context, name string, st *State) (*HookAck, error) {
	hc := st.hookConfig(name)
	ack := &HookAck{Hook: name, Type: hc.Type}
	if hc.Type == HookLambda {
		ev, _ := json.Marshal(HookEvent{Hook: name, Topics: st.Config.Topics, Renames: st.Config.Renames, Groups: st.Config.Groups, Payload: hc.Payload})
		out, err := h.d.Lambda.Invoke(ctx, &lambda.InvokeInput{
			FunctionName:   aws.String(hc.FunctionArn),
			InvocationType: types.InvocationTypeRequestResponse,
			Payload:        ev,
		})
		if err != nil {
			return nil, &HookFailedError{Hook: name, Function: hc.FunctionArn, Message: err.Error()}
		}
		if out.FunctionError != nil {
			var fe struct{ ErrorType, ErrorMessage string }
			_ = json.Unmarshal(out.Payload, &fe)
			if fe.ErrorType == "" {
				fe.ErrorType = aws.ToString(out.FunctionError)
			}
			return nil, &HookFailedError{Hook: name, Function: hc.FunctionArn, ErrorType: fe.ErrorType, Message: fe.ErrorMessage}
		}
	}
	return ack, nil
}

// ApprovalMessage is published to APPROVAL_TOPIC_ARN for an approval hook.
type ApprovalMessage struct {
	Hook      string   `json:"hook"`
	Execution string   `json:"execution,omitempty"`
	TaskToken string   `json:"taskToken"`
	Topics    []string `json:"topics"`
	// Renames maps each renamed topic to its name on the target.
	Renames      map[string]string `json:"renames,omitempty"`
	Groups       []string          `json:"groups"`
	Instructions string            `json:"instructions"`
}

func (h *Handler) requestApproval(ctx context.Context, req Request) (*HookAck, error) {
	if req.TaskToken == "" {
		return nil, &InvalidInputError{Field: "taskToken", Problem: "missing for RequestApproval"}
	}
	if h.d.SNS == nil || h.d.ApprovalTopicArn == "" {
		return nil, &HookFailedError{Hook: req.Hook, Message: "APPROVAL_TOPIC_ARN is not configured"}
	}
	// A refusal rolls the run back, except at StartProducers: the state
	// machine then ends in StartProducersFailed, since the consumers
	// already read from the target.
	refusal := "or send-task-failure to roll back"
	if req.Hook == StepStartProducers {
		refusal = "send-task-failure ends the run without rolling back, since the consumers already read from the target: finish by hand"
	}
	msg := ApprovalMessage{
		Hook: req.Hook, Execution: req.Execution, TaskToken: req.TaskToken,
		Topics: req.State.Config.Topics, Renames: req.State.Config.Renames, Groups: req.State.Config.Groups,
		Instructions: fmt.Sprintf("Perform %s, then continue with: aws stepfunctions send-task-success --task-token <taskToken> --task-output '{}' (%s).", req.Hook, refusal),
	}
	b, _ := json.Marshal(msg)
	if _, err := h.d.SNS.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(h.d.ApprovalTopicArn),
		Subject:  aws.String("kafka-msk-migrator cutover: approve " + req.Hook),
		Message:  aws.String(string(b)),
	}); err != nil {
		return nil, &HookFailedError{Hook: req.Hook, Function: h.d.ApprovalTopicArn, Message: "publishing approval request: " + err.Error()}
	}
	return &HookAck{Hook: req.Hook, Type: HookApproval}, nil
}
