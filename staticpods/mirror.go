package staticpods

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Mirrors keeps one mirror pod in the apiserver per static pod.
type Mirrors struct {
	Client kubernetes.Interface
	// Node returns the agent's Node (for the owner reference), nil until
	// it is registered.
	Node func() *v1.Node
}

// Sync creates missing or outdated mirror pods and deletes those whose
// static pod is gone. existing are the mirror pods the apiserver has on
// this node.
func (m *Mirrors) Sync(ctx context.Context, static []*v1.Pod, existing []*v1.Pod) error {
	node := m.Node()
	if node == nil {
		return fmt.Errorf("node not registered yet")
	}
	byName := map[string]*v1.Pod{}
	for _, p := range existing {
		byName[p.Namespace+"/"+p.Name] = p
	}
	var errs []error
	want := map[string]bool{}
	for _, sp := range static {
		key := sp.Namespace + "/" + sp.Name
		want[key] = true
		cur := byName[key]
		if cur != nil {
			if uid, _ := IsMirror(cur); uid == sp.UID && cur.DeletionTimestamp == nil {
				continue
			}
			// Outdated, or being deleted by a user: remove it for good
			// (grace 0, the agent's part of graceful deletion); it is
			// created again once the apiserver reports it gone.
			if err := m.delete(ctx, cur); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := m.create(ctx, sp, node); err != nil {
			errs = append(errs, err)
		}
	}
	for key, p := range byName {
		if !want[key] {
			if err := m.delete(ctx, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("mirror pods: %v", errs)
	}
	return nil
}

func (m *Mirrors) create(ctx context.Context, sp *v1.Pod, node *v1.Node) error {
	mp := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        sp.Name,
			Namespace:   sp.Namespace,
			Labels:      sp.Labels,
			Annotations: map[string]string{},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr(true),
			}},
		},
		Spec: *sp.Spec.DeepCopy(),
	}
	for k, v := range sp.Annotations {
		mp.Annotations[k] = v
	}
	mp.Annotations[ConfigMirrorAnnotation] = string(sp.UID)
	_, err := m.Client.CoreV1().Pods(sp.Namespace).Create(ctx, mp, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create mirror pod %s: %w", klog.KObj(sp), err)
	}
	klog.FromContext(ctx).V(2).Info("Created mirror pod", "pod", klog.KObj(sp))
	return nil
}

func (m *Mirrors) delete(ctx context.Context, p *v1.Pod) error {
	zero := int64(0)
	err := m.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: metav1.NewUIDPreconditions(string(p.UID)),
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete mirror pod %s: %w", klog.KObj(p), err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
