package lab

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/zdt-project/zdt/site/config"
)

// TestConfigLoads checks the lab's zdt.yaml against the real config
// package: it must load without a single problem and say what the topology
// says.
func TestConfigLoads(t *testing.T) {
	t.Parallel()
	top := DefaultTopology()
	l, err := Create(t.TempDir(), Options{Binary: "unused", Topology: &top})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(l.ConfigPath())
	if problems, ok := errors.AsType[config.Problems](err); ok {
		t.Fatalf("the lab's zdt.yaml has problems:\n%v", problems)
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != top.Cluster {
		t.Errorf("cluster %q; want %q", c.Name, top.Cluster)
	}
	want := config.Timings{
		LeaseTTL:            top.Timings.LeaseTTL,
		RenewInterval:       top.Timings.RenewInterval,
		SelfFenceMargin:     top.Timings.SelfFenceMargin,
		EtcdHeartbeat:       top.Timings.EtcdHeartbeat,
		EtcdElectionTimeout: top.Timings.EtcdElectionTimeout,
		BootstrapGrace:      top.Timings.BootstrapGrace,
	}
	if c.Timings != want {
		t.Errorf("timings %+v; want %+v", c.Timings, want)
	}
	if got, want := c.SiteNames(), top.siteNames(); !slices.Equal(got, want) {
		t.Errorf("sites %v; want %v", got, want)
	}
	for _, s := range top.Sites {
		got, _ := c.Site(s.Name)
		want := config.Site{
			Name: s.Name,
			API:  top.API(s),
			Etcd: config.SiteEtcd{
				ClientURL: top.EtcdClientURL(s),
				PeerURL:   top.EtcdPeerURL(s),
				Cert:      filepath.Join(l.Dir(), certPath(s.Name)),
				Key:       filepath.Join(l.Dir(), keyPath(s.Name)),
			},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("site %s: %+v; want %+v", s.Name, got, want)
		}
	}
	wantTLS := &config.TLS{
		CA:   filepath.Join(l.Dir(), certPath(caName)),
		Cert: filepath.Join(l.Dir(), certPath(clientName)),
		Key:  filepath.Join(l.Dir(), keyPath(clientName)),
	}
	if !reflect.DeepEqual(c.Etcd.TLS, wantTLS) {
		t.Errorf("etcd TLS %+v; want %+v", c.Etcd.TLS, wantTLS)
	}
	for _, svc := range top.Services {
		got, ok := c.Service(svc.Name)
		if !ok || !slices.Equal(got.Sites, svc.Sites) || !slices.Equal(got.Prefixes, svc.Prefixes) {
			t.Errorf("service %s: %+v; want sites %v, prefixes %v", svc.Name, got, svc.Sites, svc.Prefixes)
		}
	}
}
