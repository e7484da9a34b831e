package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/apache/dubbo-admin/pkg/core/engine"
	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// Scheme is the URL scheme Register uses.
const Scheme = "kubernetes"

// Config chooses the pods.
type Config struct {
	// Namespaces to watch; empty means every namespace.
	Namespaces []string
	// ApplicationLabels name the application, first present wins; empty
	// means DefaultApplicationLabels.
	ApplicationLabels []string
}

// Opener returns the opener of pod sources on client (the tests' is on a
// real apiserver: internal/kubeapiserver).
func Opener(client kubernetes.Interface, cfg Config) source.Opener {
	return func(_ context.Context, _ *url.URL, log logr.Logger) (source.Source, error) {
		return newPods(client, cfg, log), nil
	}
}

// Register adds the kubernetes scheme to reg. The client is built on the
// first open from the URL's kubeconfig (or the default rules) and reused.
func Register(reg source.Registry) {
	var (
		mu     sync.Mutex
		client kubernetes.Interface
	)
	reg.Register(Scheme, func(ctx context.Context, u *url.URL, log logr.Logger) (source.Source, error) {
		cfg, kubeconfig := configFromURL(u)
		mu.Lock()
		defer mu.Unlock()
		if client == nil {
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
			if err != nil {
				return nil, fmt.Errorf("kubernetes source: load client config: %w", err)
			}
			c, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return nil, fmt.Errorf("kubernetes source: %w", err)
			}
			client = c
		}
		return Opener(client, cfg)(ctx, u, log)
	})
}

// configFromURL reads namespace (repeated or comma-separated),
// applicationLabel (likewise) and kubeconfig from the URL's query.
func configFromURL(u *url.URL) (Config, string) {
	q := u.Query()
	split := func(vs []string) []string {
		var out []string
		for _, v := range vs {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	return Config{Namespaces: split(q["namespace"]), ApplicationLabels: split(q["applicationLabel"])}, q.Get("kubeconfig")
}

// pods is one term's pod source.
type pods struct {
	client    kubernetes.Interface
	cfg       Config
	log       logr.Logger
	factories []informers.SharedInformerFactory
	informers []cache.SharedIndexInformer
	cancel    context.CancelFunc
	stopOnce  sync.Once
	closed    chan struct{} // closed with the change channel
}

func newPods(client kubernetes.Interface, cfg Config, log logr.Logger) *pods {
	if len(cfg.ApplicationLabels) == 0 {
		cfg.ApplicationLabels = DefaultApplicationLabels
	}
	cfg.Namespaces = slices.Compact(slices.Sorted(slices.Values(cfg.Namespaces)))
	return &pods{client: client, cfg: cfg, log: log, cancel: func() {}}
}

// Watch starts the informers and waits for their first list.
func (p *pods) Watch(ctx context.Context) (<-chan source.Change, error) {
	ctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	out := make(chan source.Change)
	emit := func(c source.Change) {
		select {
		case out <- c:
		case <-ctx.Done():
		}
	}
	upsert := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		res, err := RuntimeInstance(pod, p.cfg.ApplicationLabels).Resource()
		if err != nil {
			p.log.Info("skipping pod", "error", err.Error())
			return
		}
		emit(source.Upsert(res))
	}
	handler := cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if !initial { // the initial list reaches the store through List
				upsert(obj)
			}
		},
		UpdateFunc: func(_, obj any) { upsert(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				emit(source.Delete(engine.KindRuntimeInstance, pod.Namespace+"/"+pod.Name))
			}
		},
	}
	namespaces := p.cfg.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{corev1.NamespaceAll}
	}
	var synced []cache.InformerSynced
	for _, ns := range namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(p.client, 0, informers.WithNamespace(ns))
		inf := f.Core().V1().Pods().Informer()
		if _, err := inf.AddEventHandler(handler); err != nil {
			p.shutdown()
			return nil, fmt.Errorf("kubernetes source: add pod handler: %w", err)
		}
		p.factories = append(p.factories, f)
		p.informers = append(p.informers, inf)
		synced = append(synced, inf.HasSynced)
	}
	for _, f := range p.factories {
		f.StartWithContext(ctx)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		p.shutdown()
		return nil, errors.New("kubernetes source: pod informers did not sync before the term ended")
	}
	// The informers' goroutines are the only senders; close out once they
	// are all gone. Stop waits for this goroutine.
	p.closed = make(chan struct{})
	go func() {
		defer close(p.closed)
		<-ctx.Done()
		for _, f := range p.factories {
			f.Shutdown()
		}
		close(out)
	}()
	return out, nil
}

// List returns the pods of the informers' caches.
func (p *pods) List(context.Context) ([]store.Resource, error) {
	var out []store.Resource
	for _, inf := range p.informers {
		for _, obj := range inf.GetStore().List() {
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				continue
			}
			res, err := RuntimeInstance(pod, p.cfg.ApplicationLabels).Resource()
			if err != nil {
				p.log.Info("skipping pod", "error", err.Error())
				continue
			}
			out = append(out, res)
		}
	}
	return out, nil
}

// Stop shuts the informers down and waits for them.
func (p *pods) Stop() error {
	p.shutdown()
	if p.closed != nil {
		<-p.closed
	}
	return nil
}

func (p *pods) shutdown() {
	p.stopOnce.Do(func() {
		p.cancel()
		for _, f := range p.factories {
			f.Shutdown()
		}
	})
}
