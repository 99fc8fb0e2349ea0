package main

// The checks the API server's validation makes on fields we use (required fields, names,
// selectors, references); strict decoding already rejected unknown fields and wrong types.

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
)

type checker struct{ problems []string }

func (c *checker) add(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) errs(field string, errs []string) {
	for _, e := range errs {
		c.add("%s: %s", field, e)
	}
}

func (c *checker) meta(m metav1.ObjectMeta, dns1035 bool) {
	if m.Name == "" {
		c.add("metadata.name is required")
	} else if dns1035 {
		c.errs("metadata.name", validation.IsDNS1035Label(m.Name))
	} else {
		c.errs("metadata.name", validation.IsDNS1123Subdomain(m.Name))
	}
	if m.Namespace != "" {
		c.errs("metadata.namespace", validation.IsDNS1123Label(m.Namespace))
	}
	c.labels("metadata.labels", m.Labels)
	for k := range m.Annotations {
		c.errs("metadata.annotations["+k+"]", validation.IsQualifiedName(strings.ToLower(k)))
	}
}

func (c *checker) labels(field string, l map[string]string) {
	for k, v := range l {
		c.errs(field+" key "+k, validation.IsQualifiedName(k))
		c.errs(field+"["+k+"]", validation.IsValidLabelValue(v))
	}
}

func (c *checker) selector(field string, s *metav1.LabelSelector, mustMatch map[string]string) {
	if s == nil {
		c.add("%s is required", field)
		return
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		c.add("%s: %v", field, err)
		return
	}
	if sel.Empty() {
		c.add("%s: empty selector would select every pod", field)
	}
	if mustMatch != nil && !sel.Matches(labels.Set(mustMatch)) {
		c.add("%s does not match the pod template's labels", field)
	}
}

func (c *checker) probe(field string, p *corev1.Probe, ports map[string]bool) {
	if p == nil {
		return
	}
	n := 0
	if p.Exec != nil {
		n++
	}
	if p.HTTPGet != nil {
		n++
		if !strings.HasPrefix(p.HTTPGet.Path, "/") {
			c.add("%s.httpGet.path must start with /", field)
		}
		if p.HTTPGet.Port.Type == 1 && !ports[p.HTTPGet.Port.StrVal] {
			c.add("%s.httpGet.port names no container port %q", field, p.HTTPGet.Port.StrVal)
		}
	}
	if p.TCPSocket != nil {
		n++
	}
	if p.GRPC != nil {
		n++
	}
	if n != 1 {
		c.add("%s must have exactly one handler", field)
	}
}

func (c *checker) podSpec(field string, s *corev1.PodSpec) {
	if len(s.Containers) == 0 {
		c.add("%s.containers: at least one container is required", field)
	}
	volumes := map[string]bool{}
	for i, v := range s.Volumes {
		c.errs(fmt.Sprintf("%s.volumes[%d].name", field, i), validation.IsDNS1123Label(v.Name))
		if volumes[v.Name] {
			c.add("%s.volumes[%d].name %q duplicated", field, i, v.Name)
		}
		volumes[v.Name] = true
		if v.ConfigMap != nil && v.ConfigMap.Name == "" || v.Secret != nil && v.Secret.SecretName == "" {
			c.add("%s.volumes[%d]: source name is required", field, i)
		}
	}
	names := map[string]bool{}
	all := append(append([]corev1.Container{}, s.InitContainers...), s.Containers...)
	for i, ct := range all {
		f := fmt.Sprintf("%s.containers[%s]", field, ct.Name)
		if ct.Name == "" {
			c.add("%s.containers[%d].name is required", field, i)
		}
		c.errs(f+".name", validation.IsDNS1123Label(ct.Name))
		if names[ct.Name] {
			c.add("%s: duplicate container name", f)
		}
		names[ct.Name] = true
		if ct.Image == "" {
			c.add("%s.image is required", f)
		}
		ports := map[string]bool{}
		for _, p := range ct.Ports {
			c.errs(f+".ports.containerPort", validation.IsValidPortNum(int(p.ContainerPort)))
			if p.Name != "" {
				c.errs(f+".ports.name", validation.IsValidPortName(p.Name))
				ports[p.Name] = true
			}
		}
		for _, e := range ct.Env {
			c.errs(f+".env "+e.Name, validation.IsEnvVarName(e.Name))
			if e.ValueFrom != nil {
				if r := e.ValueFrom.SecretKeyRef; r != nil && (r.Name == "" || r.Key == "") {
					c.add("%s.env %s: secretKeyRef needs name and key", f, e.Name)
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil && (r.Name == "" || r.Key == "") {
					c.add("%s.env %s: configMapKeyRef needs name and key", f, e.Name)
				}
			}
		}
		for _, e := range ct.EnvFrom {
			if e.ConfigMapRef != nil && e.ConfigMapRef.Name == "" || e.SecretRef != nil && e.SecretRef.Name == "" {
				c.add("%s.envFrom: name is required", f)
			}
		}
		for _, m := range ct.VolumeMounts {
			if !volumes[m.Name] {
				c.add("%s.volumeMounts: no volume named %q", f, m.Name)
			}
			if !strings.HasPrefix(m.MountPath, "/") {
				c.add("%s.volumeMounts %s: mountPath must be absolute", f, m.Name)
			}
		}
		for name, q := range ct.Resources.Requests {
			if l, ok := ct.Resources.Limits[name]; ok && q.Cmp(l) > 0 {
				c.add("%s.resources: request of %s above its limit", f, name)
			}
		}
		c.probe(f+".livenessProbe", ct.LivenessProbe, ports)
		c.probe(f+".readinessProbe", ct.ReadinessProbe, ports)
		c.probe(f+".startupProbe", ct.StartupProbe, ports)
		if p := ct.LivenessProbe; p != nil && p.SuccessThreshold > 1 {
			c.add("%s.livenessProbe.successThreshold must be 1", f)
		}
	}
	if s.ServiceAccountName != "" {
		c.errs(field+".serviceAccountName", validation.IsDNS1123Subdomain(s.ServiceAccountName))
	}
}

func required(obj runtime.Object) []string {
	c := &checker{}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		c.meta(o.ObjectMeta, false)
		c.labels("spec.template.metadata.labels", o.Spec.Template.Labels)
		c.selector("spec.selector", o.Spec.Selector, o.Spec.Template.Labels)
		c.podSpec("spec.template.spec", &o.Spec.Template.Spec)
		if rp := o.Spec.Template.Spec.RestartPolicy; rp != "" && rp != corev1.RestartPolicyAlways {
			c.add("spec.template.spec.restartPolicy must be Always")
		}
	case *batchv1.Job:
		c.meta(o.ObjectMeta, false)
		c.podSpec("spec.template.spec", &o.Spec.Template.Spec)
		if rp := o.Spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
			c.add("spec.template.spec.restartPolicy must be Never or OnFailure")
		}
	case *corev1.Service:
		c.meta(o.ObjectMeta, true)
		if o.Spec.Type != corev1.ServiceTypeExternalName && len(o.Spec.Ports) == 0 {
			c.add("spec.ports: at least one port is required")
		}
		for _, p := range o.Spec.Ports {
			c.errs("spec.ports.port", validation.IsValidPortNum(int(p.Port)))
			if len(o.Spec.Ports) > 1 && p.Name == "" {
				c.add("spec.ports: every port needs a name when there are several")
			}
		}
		c.labels("spec.selector", o.Spec.Selector)
	case *corev1.ServiceAccount:
		c.meta(o.ObjectMeta, false)
	case *corev1.ConfigMap:
		c.meta(o.ObjectMeta, false)
		for k := range o.Data {
			c.errs("data key "+k, validation.IsConfigMapKey(k))
		}
	case *corev1.Secret:
		c.meta(o.ObjectMeta, false)
		for k := range o.Data {
			c.errs("data key "+k, validation.IsConfigMapKey(k))
		}
		for k := range o.StringData {
			c.errs("stringData key "+k, validation.IsConfigMapKey(k))
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		c.meta(o.ObjectMeta, false)
		r := o.Spec.ScaleTargetRef
		if r.Kind == "" || r.Name == "" {
			c.add("spec.scaleTargetRef: kind and name are required")
		}
		if o.Spec.MaxReplicas < 1 {
			c.add("spec.maxReplicas must be at least 1")
		}
		if o.Spec.MinReplicas != nil && (*o.Spec.MinReplicas < 1 || *o.Spec.MinReplicas > o.Spec.MaxReplicas) {
			c.add("spec.minReplicas must be between 1 and maxReplicas")
		}
		for i, m := range o.Spec.Metrics {
			if m.Type == "" {
				c.add("spec.metrics[%d].type is required", i)
			}
			if m.Type == autoscalingv2.ResourceMetricSourceType && (m.Resource == nil || m.Resource.Name == "" || m.Resource.Target.Type == "") {
				c.add("spec.metrics[%d].resource: name and target.type are required", i)
			}
		}
	case *policyv1.PodDisruptionBudget:
		c.meta(o.ObjectMeta, false)
		c.selector("spec.selector", o.Spec.Selector, nil)
		if (o.Spec.MinAvailable == nil) == (o.Spec.MaxUnavailable == nil) {
			c.add("spec: exactly one of minAvailable and maxUnavailable")
		}
	case *networkingv1.Ingress:
		c.meta(o.ObjectMeta, false)
		for _, r := range o.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				if p.PathType == nil {
					c.add("spec.rules.http.paths %s: pathType is required", p.Path)
				}
				if !strings.HasPrefix(p.Path, "/") {
					c.add("spec.rules.http.paths %s: path must be absolute", p.Path)
				}
				if p.Backend.Service == nil || p.Backend.Service.Name == "" {
					c.add("spec.rules.http.paths %s: backend service name is required", p.Path)
				} else if p.Backend.Service.Port.Name == "" && p.Backend.Service.Port.Number == 0 {
					c.add("spec.rules.http.paths %s: backend service port is required", p.Path)
				}
			}
		}
	case *networkingv1.NetworkPolicy:
		c.meta(o.ObjectMeta, false)
		for _, t := range o.Spec.PolicyTypes {
			if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
				c.add("spec.policyTypes: unknown %q", t)
			}
		}
		peers := func(field string, ps []networkingv1.NetworkPolicyPeer) {
			for _, p := range ps {
				n := 0
				if p.PodSelector != nil || p.NamespaceSelector != nil {
					n++
				}
				if p.IPBlock != nil {
					n++
					if p.IPBlock.CIDR == "" {
						c.add("%s.ipBlock.cidr is required", field)
					}
				}
				if n != 1 {
					c.add("%s: a peer is pod/namespace selectors or an ipBlock", field)
				}
			}
		}
		for _, r := range o.Spec.Ingress {
			peers("spec.ingress.from", r.From)
		}
		for _, r := range o.Spec.Egress {
			peers("spec.egress.to", r.To)
		}
	default:
		if m, ok := obj.(metav1.Object); ok && m.GetName() == "" {
			c.add("metadata.name is required")
		}
	}
	return c.problems
}
