"""The offline plan: the real program run under the Pulumi SDK's mocks (run, mocks), shown
as text, manifests and plan.json (render), and compared between stacks and git refs
(diff)."""
