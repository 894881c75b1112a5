/*
Copyright 2026 The nango-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1alpha1 "github.com/nango-operator/nango-operator/api/v1alpha1"
	"github.com/nango-operator/nango-operator/internal/version"
)

// plugin holds what every command needs: kubectl's connection flags and the output streams.
type plugin struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
}

func newRootCommand(streams genericiooptions.IOStreams) *cobra.Command {
	p := &plugin{flags: genericclioptions.NewConfigFlags(true), streams: streams}
	root := &cobra.Command{
		Use:   "kubectl-nango",
		Short: "Drive nango-operator's NangoSyncs from the command line",
		Long: `Drive nango-operator's NangoSyncs from the command line.

 Ask for a sync now and see the records it brought, read everything again, pause and resume,
 and see what the operator did. Every command takes kubectl's own flags (--kubeconfig,
 --context, -n/--namespace, …).`,
		Example: `  # Sync one NangoSync now and wait until the operator handled it
  kubectl nango sync acme-hubspot-contacts -n crm

  # See every NangoSync of the cluster
  kubectl nango status -A`,
		Version:       version.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl nango"},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	// --version without -v, which kubectl users know as the log level.
	root.Flags().Bool("version", false, "Print the plugin's version, commit and build date.")
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: exitUsage, err: err} })
	p.flags.AddFlags(root.PersistentFlags())
	root.AddCommand(
		p.requestCommand("sync", syncv1alpha1.RequestedAtAnnotation,
			"Sync a NangoSync now and wait until the operator handled it",
			"Sync a NangoSync now: set its sync.nango.dev/requested-at annotation and wait until the operator\n"+
				" handled it (status.lastHandledRequestedAt), then print the records it brought.",
			func(s *syncv1alpha1.NangoSyncStatus) string { return s.LastHandledRequestedAt }),
		p.requestCommand("resync", syncv1alpha1.ResyncAnnotation,
			"Read every record of a NangoSync again and wait until the operator started",
			"Read every record of a NangoSync again: set its sync.nango.dev/resync annotation, which forgets the\n"+
				" cursor (and, with spec.syncName, asks Nango for a full resync too), and wait until the operator\n"+
				" handled it (status.lastHandledResyncAt).",
			func(s *syncv1alpha1.NangoSyncStatus) string { return s.LastHandledResyncAt }),
		p.suspendCommand("suspend", true),
		p.suspendCommand("resume", false),
		p.statusCommand(),
	)
	return root
}

// client answers a client for the cluster and the namespace kubectl's flags name.
func (p *plugin) client() (client.Client, string, error) {
	config, err := p.flags.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	scheme := runtime.NewScheme()
	if err := syncv1alpha1.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	c, err := client.New(config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", fmt.Errorf("connect to the cluster: %w", err)
	}
	namespace, _, err := p.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	return c, namespace, nil
}

// requestCommand is sync or resync: set an annotation to a new value, and with --wait,
// wait until the status says the operator acted on that value.
func (p *plugin) requestCommand(use, annotation, short, long string, handled func(*syncv1alpha1.NangoSyncStatus) string) *cobra.Command {
	waitFor := true
	timeout := 2 * time.Minute
	cmd := &cobra.Command{
		Use:     use + " NAME",
		Short:   short,
		Long:    long + "\n\n Exit status: 0 handled, 1 failed, 2 wrong usage, 3 not handled within --timeout.",
		Example: fmt.Sprintf("  kubectl nango %s acme-hubspot-contacts -n crm\n  kubectl nango %s acme-hubspot-contacts --wait=false", use, use),
		Args:    exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, namespace, err := p.client()
			if err != nil {
				return err
			}
			key := client.ObjectKey{Namespace: namespace, Name: args[0]}
			before := &syncv1alpha1.NangoSync{}
			if err := c.Get(cmd.Context(), key, before); err != nil {
				return notFoundHint(err, key)
			}
			value := time.Now().UTC().Format(time.RFC3339Nano)
			patch := client.RawPatch("application/merge-patch+json",
				fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, annotation, value))
			if err := c.Patch(cmd.Context(), before.DeepCopy(), patch); err != nil {
				return fmt.Errorf("annotate nangosync/%s: %w", key.Name, err)
			}
			if !waitFor {
				_, _ = fmt.Fprintf(p.streams.Out, "nangosync/%s %s requested\n", key.Name, use)
				return nil
			}
			after, err := waitHandled(cmd.Context(), c, key, value, timeout, handled)
			if err != nil {
				return err
			}
			return p.report(use, before, after)
		},
	}
	cmd.Flags().BoolVar(&waitFor, "wait", waitFor, "Wait until the operator handled the request.")
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "How long to wait with --wait before giving up (exit status 3).")
	return cmd
}

// waitHandled polls the NangoSync until handled answers value. Polling, not a watch, so that
// a user allowed only to get NangoSyncs can use it.
func waitHandled(ctx context.Context, c client.Client, key client.ObjectKey, value string, timeout time.Duration,
	handled func(*syncv1alpha1.NangoSyncStatus) string) (*syncv1alpha1.NangoSync, error) {
	nsync := &syncv1alpha1.NangoSync{}
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, nsync); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
				return false, err
			}
			// Anything else (a slow API server, the client's own rate limit near the
			// deadline) may pass: keep waiting, and say it if time runs out.
			lastErr = err
			return false, nil
		}
		return handled(&nsync.Status) == value, nil
	})
	if err == nil {
		return nsync, nil
	}
	if wait.Interrupted(err) {
		ready := apimeta.FindStatusCondition(nsync.Status.Conditions, syncv1alpha1.ReadyCondition)
		detail := "no Ready condition yet"
		switch {
		case ready != nil:
			detail = fmt.Sprintf("Ready=%s %s: %s", ready.Status, ready.Reason, ready.Message)
		case lastErr != nil:
			detail = lastErr.Error()
		}
		return nil, &exitError{code: exitTimeout, err: fmt.Errorf("nangosync/%s: not handled within %s (%s)", key.Name, timeout, detail)}
	}
	return nil, fmt.Errorf("nangosync/%s: %w", key.Name, err)
}

// report prints what a handled sync or resync did, and fails when the NangoSync is not Ready.
func (p *plugin) report(use string, before, after *syncv1alpha1.NangoSync) error {
	r := after.Status.Records
	if use == "resync" {
		_, _ = fmt.Fprintf(p.streams.Out, "nangosync/%s resynced: %d records so far (%d added, %d updated, %d deleted)\n",
			after.Name, r.Total, r.Added, r.Updated, r.Deleted)
	} else {
		b := before.Status.Records
		_, _ = fmt.Fprintf(p.streams.Out, "nangosync/%s synced: %d records brought (%d added, %d updated, %d deleted), %d in all\n",
			after.Name, r.Total-b.Total, r.Added-b.Added, r.Updated-b.Updated, r.Deleted-b.Deleted, r.Total)
	}
	ready := apimeta.FindStatusCondition(after.Status.Conditions, syncv1alpha1.ReadyCondition)
	if ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason != syncv1alpha1.ProgressingReason {
		return fmt.Errorf("nangosync/%s is not Ready: %s: %s", after.Name, ready.Reason, ready.Message)
	}
	return nil
}

// suspendCommand sets spec.suspend of a NangoSync, or spec.template.spec.suspend of a
// NangoSyncSet named set/NAME (which pauses every NangoSync the set owns). It refuses a
// NangoSync a set owns: the set owns its spec.suspend and would undo the change.
func (p *plugin) suspendCommand(use string, suspend bool) *cobra.Command {
	verb := map[bool]string{true: "Pause", false: "Resume"}[suspend]
	done := map[bool]string{true: "suspended", false: "resumed"}[suspend]
	return &cobra.Command{
		Use:   use + " NAME | set/NAME",
		Short: verb + " a NangoSync, or every NangoSync of a NangoSyncSet",
		Long: verb + " a NangoSync (spec.suspend). The cursor is kept: a resumed NangoSync carries on where it was.\n" +
			" set/NAME names a NangoSyncSet: its spec.template.spec.suspend is set, which reaches every NangoSync it\n" +
			" owns and those it creates later (discovery goes on). A NangoSync a set owns is refused: the set owns its\n" +
			" spec.suspend and would put it back: " + use + " the set instead.",
		Example: fmt.Sprintf("  kubectl nango %s acme-hubspot-contacts -n crm\n  kubectl nango %s set/hubspot -n crm", use, use),
		Args:    exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, namespace, err := p.client()
			if err != nil {
				return err
			}
			if set, ok := strings.CutPrefix(args[0], "set/"); ok {
				obj := &syncv1alpha1.NangoSyncSet{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: set}}
				patch := client.RawPatch("application/merge-patch+json",
					fmt.Appendf(nil, `{"spec":{"template":{"spec":{"suspend":%t}}}}`, suspend))
				if err := c.Patch(cmd.Context(), obj, patch); err != nil {
					return notFoundHint(err, client.ObjectKeyFromObject(obj))
				}
				_, _ = fmt.Fprintf(p.streams.Out, "nangosyncset/%s %s: every NangoSync it owns follows (spec.template.spec.suspend=%t)\n",
					set, done, suspend)
				return nil
			}
			obj := &syncv1alpha1.NangoSync{}
			key := client.ObjectKey{Namespace: namespace, Name: args[0]}
			if err := c.Get(cmd.Context(), key, obj); err != nil {
				return notFoundHint(err, key)
			}
			if ref := metav1.GetControllerOf(obj); ref != nil && ref.Kind == "NangoSyncSet" {
				return fmt.Errorf("nangosync/%s belongs to NangoSyncSet %s, which sets its spec.suspend from the set's "+
					"spec.template.spec.suspend and would undo this: run `kubectl nango %s set/%s -n %s` to %s every NangoSync of the set",
					obj.Name, ref.Name, use, ref.Name, namespace, strings.ToLower(verb))
			}
			patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"suspend":%t}}`, suspend))
			if err := c.Patch(cmd.Context(), obj, patch); err != nil {
				return notFoundHint(err, key)
			}
			_, _ = fmt.Fprintf(p.streams.Out, "nangosync/%s %s\n", obj.Name, done)
			return nil
		},
	}
}

// statusCommand prints a table of NangoSyncs, and of NangoSyncSets with their children.
func (p *plugin) statusCommand() *cobra.Command {
	allNamespaces := false
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Show what the operator did: Ready, reason, records, lag, last change, and each set's children",
		Long: "Show the NangoSyncs of a namespace (or one of them, or all with -A): whether they are Ready and why,\n" +
			" how many records they wrote, how old the newest record is (the copy's lag behind the source), how long\n" +
			" ago a sync last changed the sink, and which NangoSyncSet owns them.\n" +
			" NangoSyncSets follow, with how many of their NangoSyncs are Ready.",
		Example: "  kubectl nango status -n crm\n  kubectl nango status acme-hubspot-contacts -n crm\n  kubectl nango status -A",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, namespace, err := p.client()
			if err != nil {
				return err
			}
			var opts []client.ListOption
			if !allNamespaces {
				opts = append(opts, client.InNamespace(namespace))
			}
			syncs := &syncv1alpha1.NangoSyncList{}
			if err := c.List(cmd.Context(), syncs, opts...); err != nil {
				return fmt.Errorf("list NangoSyncs: %w", err)
			}
			if len(args) == 1 {
				syncs.Items = filterName(syncs.Items, args[0])
				if len(syncs.Items) == 0 {
					return notFoundHint(apierrors.NewNotFound(syncv1alpha1.GroupVersion.WithResource("nangosyncs").GroupResource(), args[0]),
						client.ObjectKey{Namespace: namespace, Name: args[0]})
				}
			}
			sets := &syncv1alpha1.NangoSyncSetList{}
			if len(args) == 0 {
				if err := c.List(cmd.Context(), sets, opts...); err != nil {
					return fmt.Errorf("list NangoSyncSets: %w", err)
				}
			}
			return p.printStatus(allNamespaces, syncs.Items, sets.Items)
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "List the NangoSyncs of every namespace.")
	return cmd
}

func (p *plugin) printStatus(allNamespaces bool, syncs []syncv1alpha1.NangoSync, sets []syncv1alpha1.NangoSyncSet) error {
	if len(syncs) == 0 && len(sets) == 0 {
		_, _ = fmt.Fprintln(p.streams.ErrOut, "No NangoSyncs found.")
		return nil
	}
	now := time.Now()
	w := tabwriter.NewWriter(p.streams.Out, 0, 8, 3, ' ', 0)
	prefix := func(ns string) string {
		if allNamespaces {
			return ns + "\t"
		}
		return ""
	}
	if len(syncs) > 0 {
		_, _ = fmt.Fprintln(w, prefix("NAMESPACE")+"NAME\tREADY\tREASON\tRECORDS\tNEWEST RECORD\tLAST CHANGE\tSET\tMESSAGE")
		for _, s := range syncs {
			status, reason, message := condition(s.Status.Conditions)
			set := s.Labels[syncv1alpha1.SyncSetLabel]
			if set == "" {
				set = "-"
			}
			_, _ = fmt.Fprintf(w, "%s%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", prefix(s.Namespace), s.Name, status, reason,
				s.Status.Records.Total, age(s.Status.NewestRecordTime, now), age(s.Status.LastChangeTime, now), set, message)
		}
	}
	if len(sets) > 0 {
		if len(syncs) > 0 {
			_, _ = fmt.Fprintln(w)
		}
		_, _ = fmt.Fprintln(w, prefix("NAMESPACE")+"NANGOSYNCSET\tREADY\tREASON\tCONNECTIONS\tSYNCS READY\tLAST DISCOVERY\tMESSAGE")
		for _, s := range sets {
			status, reason, message := condition(s.Status.Conditions)
			_, _ = fmt.Fprintf(w, "%s%s\t%s\t%s\t%d\t%d/%d\t%s\t%s\n", prefix(s.Namespace), s.Name, status, reason,
				s.Status.Connections, s.Status.ReadySyncs, s.Status.Syncs, age(s.Status.LastDiscoveryTime, now), message)
		}
	}
	return w.Flush()
}

// condition answers the Ready condition's status, reason and message, or dashes.
func condition(conditions []metav1.Condition) (string, string, string) {
	ready := apimeta.FindStatusCondition(conditions, syncv1alpha1.ReadyCondition)
	if ready == nil {
		return "-", "-", "-"
	}
	return string(ready.Status), ready.Reason, ready.Message
}

// age is how long ago t was, as kubectl prints ages.
func age(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t.Time)) + " ago"
}

func filterName(items []syncv1alpha1.NangoSync, name string) []syncv1alpha1.NangoSync {
	for _, s := range items {
		if s.Name == name {
			return []syncv1alpha1.NangoSync{s}
		}
	}
	return nil
}

// exactlyOneName refuses a command line without exactly one NAME, with exit status 2.
func exactlyOneName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return &exitError{code: exitUsage, err: fmt.Errorf("%s takes exactly one NAME; see %s --help", cmd.CommandPath(), cmd.CommandPath())}
	}
	return nil
}

// notFoundHint says which namespace was looked in when an object is missing.
func notFoundHint(err error, key client.ObjectKey) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%q not found in namespace %q (use -n to name another): %w", key.Name, key.Namespace, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &exitError{code: exitTimeout, err: err}
	}
	return err
}
