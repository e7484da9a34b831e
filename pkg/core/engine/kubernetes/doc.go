// Package kubernetes is Engine's Kubernetes source: the pods of chosen
// namespaces, list-watched through client-go shared informers and mapped to
// RuntimeInstance resources. It is the only package that links client-go,
// so a build that does not register it stays light.
//
// Each term builds its own informers (one shared informer factory per
// namespace, or one for all namespaces) and shuts them down, waiting for
// their goroutines, when the term ends. Pods of the informers' initial list
// reach the store through List; later adds, updates and deletes through
// Watch.
//
// URL (see Register): kubernetes, or
// kubernetes://?namespace=a&namespace=b&kubeconfig=PATH&applicationLabel=app.
// Without kubeconfig the usual rules apply: $KUBECONFIG, ~/.kube/config, and
// in a pod the in-cluster service account.
package kubernetes
