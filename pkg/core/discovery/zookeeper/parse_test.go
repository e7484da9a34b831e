package zookeeper

import (
	"net/url"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/pkg/core/discovery"
)

var _ = Describe("Parsing registry nodes", func() {
	It("maps a provider URL", func() {
		name := url.QueryEscape("tri://[fe80::1]:50051/org.example.Greeter?application=demo&group=g1&version=2.0&methods=a,b&weight=7&side=provider&timestamp=1714550000000")
		r, err := parseURLNode("org.example.Greeter", "providers", name)
		Expect(err).NotTo(HaveOccurred())
		Expect(r).To(Equal(discovery.Registration{
			Application: "demo", IP: "fe80::1", Port: 50051, Protocol: "tri", Interface: "org.example.Greeter",
			Group: "g1", Version: "2.0", Methods: []string{"a", "b"}, Weight: 7, Side: "provider",
			Timestamp: time.UnixMilli(1714550000000).UTC(),
		}))
		Expect(discovery.InstanceKey(r.Application, r.IP, r.Port)).To(Equal("demo/[fe80::1]:50051"))
	})

	It("maps a consumer URL, taking the side from the category", func() {
		name := url.QueryEscape("consumer://10.0.0.5/org.example.Greeter?application=web&version=1.0")
		r, err := parseURLNode("org.example.Greeter", "consumers", name)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Side).To(Equal("consumer"))
		Expect(r.Port).To(Equal(0))
		Expect(r.Protocol).To(BeEmpty())
	})

	DescribeTable("refuses malformed URL nodes",
		func(name string) {
			_, err := parseURLNode("x", "providers", name)
			Expect(err).To(HaveOccurred())
		},
		Entry("bad escape", "%zz"),
		Entry("no scheme", url.QueryEscape("10.0.0.1:1/x?application=a")),
		Entry("no application", url.QueryEscape("dubbo://10.0.0.1:1/x")),
		Entry("bad weight", url.QueryEscape("dubbo://10.0.0.1:1/x?application=a&weight=heavy")),
	)

	It("maps a Curator service instance", func() {
		data := []byte(`{"name":"demo","id":"10.0.0.1:20880","address":"10.0.0.1","port":20880,
			"payload":{"metadata":{"dubbo.endpoints":"[{\"port\":20880,\"protocol\":\"dubbo\"},{\"port\":50051,\"protocol\":\"tri\"}]"}},
			"registrationTimeUTC":1714550000000}`)
		r, err := parseInstanceNode("demo", data)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Protocol).To(Equal("dubbo"))
		Expect(r.Port).To(Equal(20880))
		Expect(r.Timestamp).To(Equal(time.UnixMilli(1714550000000).UTC()))
	})

	DescribeTable("refuses malformed instances",
		func(data string) {
			_, err := parseInstanceNode("demo", []byte(data))
			Expect(err).To(HaveOccurred())
		},
		Entry("not JSON", "{"),
		Entry("no port", `{"name":"demo","address":"10.0.0.1"}`),
		Entry("another application", `{"name":"other","address":"10.0.0.1","port":1}`),
	)

	It("reads servers and the session timeout from the URL", func() {
		u, err := url.Parse("zookeeper://h1:2181,h2:2182?sessionTimeout=3s")
		Expect(err).NotTo(HaveOccurred())
		cfg, err := ConfigFromURL(u)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg).To(Equal(Config{Servers: []string{"h1:2181", "h2:2182"}, SessionTimeout: 3 * time.Second}))
	})
})
