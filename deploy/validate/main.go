// sbk8s renders kustomize overlays and validates the rendered Kubernetes objects offline.
//
//	sbk8s render DIR            print `kustomize build DIR` (kustomize linked in as a library)
//	sbk8s validate [FILE|-]     decode every document strictly into the typed object of its
//	                            apiVersion/kind (k8s.io/api of the pinned release), then check
//	                            the fields the API server requires; custom resources are listed
//	                            with --crd group/version/Kind and left to their own schemas
//
// Nothing is downloaded at run time: the schema is the Go types compiled in.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		autoscalingv2.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
		rbacv1.AddToScheme, admissionregistrationv1.AddToScheme,
	} {
		utilruntime.Must(add(s))
	}
	return s
}

func render(dir string, out io.Writer) error {
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy // the order `kubectl kustomize` prints: Namespace first
	k := krusty.MakeKustomizer(opts)
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return err
	}
	y, err := m.AsYaml()
	if err != nil {
		return err
	}
	_, err = out.Write(y)
	return err
}

// splitDocs splits a YAML stream on document separators, dropping empty documents.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	flush := func() {
		if len(bytes.TrimSpace(cur.Bytes())) > 0 {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "---" || strings.HasPrefix(line, "--- ") {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func validate(data []byte, crds map[string]bool, s *runtime.Scheme) (int, []string) {
	var problems []string
	docs := splitDocs(data)
	for i, doc := range docs {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			problems = append(problems, fmt.Sprintf("document %d: not YAML: %v", i, err))
			continue
		}
		where := fmt.Sprintf("document %d (%s %s/%s)", i, head.APIVersion, head.Kind, head.Metadata.Name)
		if head.APIVersion == "" || head.Kind == "" {
			problems = append(problems, where+": apiVersion and kind are required")
			continue
		}
		gv, err := schema.ParseGroupVersion(head.APIVersion)
		if err != nil {
			problems = append(problems, where+": "+err.Error())
			continue
		}
		gvk := gv.WithKind(head.Kind)
		if crds[head.APIVersion+"/"+head.Kind] {
			if err := checkMeta(head.Metadata.Name); err != nil {
				problems = append(problems, where+": "+err.Error())
			}
			continue
		}
		obj, err := s.New(gvk)
		if err != nil {
			problems = append(problems, where+": unknown built-in kind (not in the pinned k8s.io/api)")
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			problems = append(problems, where+": "+err.Error())
			continue
		}
		for _, p := range required(obj) {
			problems = append(problems, where+": "+p)
		}
	}
	return len(docs), problems
}

func checkMeta(name string) error {
	if name == "" {
		return errors.New("metadata.name is required")
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sbk8s render DIR | sbk8s validate [--crd g/v/Kind]... [FILE|-]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "render":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "usage: sbk8s render DIR")
			os.Exit(2)
		}
		if err := render(os.Args[2], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "render:", err)
			os.Exit(1)
		}
	case "validate":
		fs := flag.NewFlagSet("validate", flag.ExitOnError)
		var crdList stringList
		fs.Var(&crdList, "crd", "apiVersion/Kind of a custom resource to accept (repeatable)")
		_ = fs.Parse(os.Args[2:])
		crds := map[string]bool{}
		for _, c := range crdList {
			crds[c] = true
		}
		var data []byte
		var err error
		if fs.NArg() == 0 || fs.Arg(0) == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(fs.Arg(0))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "read:", err)
			os.Exit(2)
		}
		n, problems := validate(data, crds, newScheme())
		for _, p := range problems {
			fmt.Println(p)
		}
		if len(problems) > 0 {
			fmt.Fprintf(os.Stderr, "%d documents, %d problems\n", n, len(problems))
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "%d documents valid\n", n)
	case "version":
		fmt.Println(apiVersion)
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}
