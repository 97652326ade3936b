namespace NetTune.CrdGen;

/// <summary>
/// Hand-written schemas for the Kubernetes model types the API embeds. Reflecting over the k8s.Models classes would
/// give neither descriptions nor the validation the apiserver applies to the built-in types, so they are spelled out
/// after the Kubernetes API conventions.
/// </summary>
internal static class KnownSchemas
{
    public static SchemaNode LabelSelector(string description) => new()
    {
        ["description"] = description,
        ["type"] = "object",
        ["x-kubernetes-map-type"] = "atomic",
        ["properties"] = new SchemaNode
        {
            ["matchLabels"] = new SchemaNode
            {
                ["description"] = "Labels the node must carry, each key with exactly this value. The requirements are ANDed with matchExpressions.",
                ["type"] = "object",
                ["additionalProperties"] = new SchemaNode { ["type"] = "string" },
            },
            ["matchExpressions"] = new SchemaNode
            {
                ["description"] = "Label requirements the node must meet, all of them (ANDed).",
                ["type"] = "array",
                ["x-kubernetes-list-type"] = "atomic",
                ["items"] = new SchemaNode
                {
                    ["description"] = "One requirement: a label key, an operator and, for In and NotIn, the values.",
                    ["type"] = "object",
                    ["required"] = new List<object> { "key", "operator" },
                    ["properties"] = new SchemaNode
                    {
                        ["key"] = new SchemaNode
                        {
                            ["description"] = "The label key the requirement applies to.",
                            ["type"] = "string",
                        },
                        ["operator"] = new SchemaNode
                        {
                            ["description"] = "How the key relates to the values: In, NotIn, Exists or DoesNotExist.",
                            ["type"] = "string",
                            ["enum"] = new List<object> { "In", "NotIn", "Exists", "DoesNotExist" },
                        },
                        ["values"] = new SchemaNode
                        {
                            ["description"] = "The values for In and NotIn (non-empty); must be empty for Exists and DoesNotExist.",
                            ["type"] = "array",
                            ["x-kubernetes-list-type"] = "atomic",
                            ["items"] = new SchemaNode { ["type"] = "string" },
                        },
                    },
                },
            },
        },
    };

    /// <summary>The item schema of a conditions list: metav1.Condition with the limits the conventions give it.</summary>
    public static SchemaNode Condition() => new()
    {
        ["description"] = "One aspect of the object's current state, after the Kubernetes API conventions (metav1.Condition).",
        ["type"] = "object",
        ["required"] = new List<object> { "lastTransitionTime", "message", "reason", "status", "type" },
        ["properties"] = new SchemaNode
        {
            ["type"] = new SchemaNode
            {
                ["description"] = "The condition type in CamelCase, or foo.example.com/CamelCase.",
                ["type"] = "string",
                ["maxLength"] = 316,
                ["pattern"] = @"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            },
            ["status"] = new SchemaNode
            {
                ["description"] = "Whether the condition holds: True, False or Unknown.",
                ["type"] = "string",
                ["enum"] = new List<object> { "True", "False", "Unknown" },
            },
            ["observedGeneration"] = new SchemaNode
            {
                ["description"] = "The metadata.generation the condition was set from; older than the object's generation means the condition is out of date.",
                ["type"] = "integer",
                ["format"] = "int64",
                ["minimum"] = 0,
            },
            ["lastTransitionTime"] = new SchemaNode
            {
                ["description"] = "When the status last changed from one value to another.",
                ["type"] = "string",
                ["format"] = "date-time",
            },
            ["reason"] = new SchemaNode
            {
                ["description"] = "A CamelCase identifier of why the condition last changed, for programs; never empty.",
                ["type"] = "string",
                ["minLength"] = 1,
                ["maxLength"] = 1024,
                ["pattern"] = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            },
            ["message"] = new SchemaNode
            {
                ["description"] = "A human-readable explanation of the last change; may be empty.",
                ["type"] = "string",
                ["maxLength"] = 32768,
            },
        },
    };
}
