package kubernetes

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/apache/dubbo-admin/pkg/core/engine"
)

// DefaultApplicationLabels are the pod labels that name the Dubbo
// application, in order of preference.
var DefaultApplicationLabels = []string{"dubbo.apache.org/application", "app.kubernetes.io/name", "app"}

// RuntimeInstance maps a pod; the first of appLabels present names the
// application.
func RuntimeInstance(pod *corev1.Pod, appLabels []string) engine.RuntimeInstance {
	ri := engine.RuntimeInstance{
		Name:      pod.Name,
		Namespace: pod.Namespace,
		Node:      pod.Spec.NodeName,
		PodIP:     pod.Status.PodIP,
		Phase:     string(pod.Status.Phase),
		Ready:     podReady(pod),
		CreatedAt: utc(pod.CreationTimestamp.Time),
	}
	if len(pod.Labels) > 0 {
		ri.Labels = make(map[string]string, len(pod.Labels))
		for k, v := range pod.Labels {
			ri.Labels[k] = v
		}
	}
	for _, l := range appLabels {
		if v := pod.Labels[l]; v != "" {
			ri.Application = v
			break
		}
	}
	if pod.Status.StartTime != nil {
		ri.StartedAt = utc(pod.Status.StartTime.Time)
	}
	return ri
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
