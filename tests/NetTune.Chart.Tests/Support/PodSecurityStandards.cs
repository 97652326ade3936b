using k8s.Models;

namespace NetTune.Chart.Tests.Support;

public enum PodSecurityLevel { Privileged, Baseline, Restricted }

/// <summary>One control of the Pod Security Standards: the level that enforces it and what breaks it in a pod.</summary>
/// <param name="Check">The violations of the control in the pod (empty when it passes).</param>
public sealed record PodSecurityControl(PodSecurityLevel Level, string Name, Func<V1ObjectMeta?, V1PodSpec, IEnumerable<string>> Check);

/// <summary>
/// The controls of the Pod Security Standards (kubernetes.io/docs/concepts/security/pod-security-standards, version
/// "latest" as of Kubernetes 1.34), written from the published tables: a pod passes a level when no control of that
/// level or a lower one finds a violation. Fields of pod, containers, init and ephemeral containers are checked as the
/// standard lists them. The pod is judged as admission sees it, after the API server's defaulting: a container port of
/// a host-network pod is also a host port.
/// </summary>
public static class PodSecurityStandards
{
    private static readonly HashSet<string> BaselineCapabilities = new(StringComparer.Ordinal)
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID",
        "SETPCAP", "SETUID", "SYS_CHROOT",
    };

    private static readonly HashSet<string> SafeSysctls = new(StringComparer.Ordinal)
    {
        "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
    };

    private static readonly HashSet<string> SeLinuxTypes = new(StringComparer.Ordinal)
    {
        "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t",
    };

    private static readonly HashSet<string> RestrictedVolumes = new(StringComparer.Ordinal)
    {
        "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
    };

    /// <summary>Every container of the pod with its kind, as the standard's "spec.containers[*], spec.initContainers[*], spec.ephemeralContainers[*]".</summary>
    private static IEnumerable<(string Path, V1SecurityContext? Context, IList<V1ContainerPort>? Ports)> Containers(V1PodSpec pod) =>
        (pod.Containers ?? []).Select(c => Entry($"containers[{c.Name}]", c.SecurityContext, c.Ports))
        .Concat((pod.InitContainers ?? []).Select(c => Entry($"initContainers[{c.Name}]", c.SecurityContext, c.Ports)))
        .Concat((pod.EphemeralContainers ?? []).Select(c => Entry($"ephemeralContainers[{c.Name}]", c.SecurityContext, c.Ports)));

    private static (string Path, V1SecurityContext? Context, IList<V1ContainerPort>? Ports) Entry(string path, V1SecurityContext? context, IList<V1ContainerPort>? ports) =>
        (path, context, ports);

    public static readonly IReadOnlyList<PodSecurityControl> Controls =
    [
        new(PodSecurityLevel.Baseline, "HostProcess", (_, pod) =>
            (pod.SecurityContext?.WindowsOptions?.HostProcess == true ? ["securityContext.windowsOptions.hostProcess"] : Array.Empty<string>())
            .Concat(Containers(pod).Where(c => c.Context?.WindowsOptions?.HostProcess == true).Select(c => c.Path + ".securityContext.windowsOptions.hostProcess"))),
        new(PodSecurityLevel.Baseline, "Host Namespaces", (_, pod) =>
            new[] { ("hostNetwork", pod.HostNetwork), ("hostPID", pod.HostPID), ("hostIPC", pod.HostIPC) }.Where(f => f.Item2 == true).Select(f => f.Item1)),
        new(PodSecurityLevel.Baseline, "Privileged Containers", (_, pod) =>
            Containers(pod).Where(c => c.Context?.Privileged == true).Select(c => c.Path + ".securityContext.privileged")),
        new(PodSecurityLevel.Baseline, "Capabilities", (_, pod) =>
            Containers(pod).SelectMany(c => (c.Context?.Capabilities?.Add ?? []).Where(a => !BaselineCapabilities.Contains(a)).Select(a => $"{c.Path} adds {a}"))),
        new(PodSecurityLevel.Baseline, "HostPath Volumes", (_, pod) =>
            (pod.Volumes ?? []).Where(v => v.HostPath is not null).Select(v => $"volume {v.Name} is hostPath {v.HostPath.Path}")),
        new(PodSecurityLevel.Baseline, "Host Ports", (_, pod) =>
            Containers(pod).SelectMany(c => (c.Ports ?? [])
                .Select(p => (p, HostPort: p.HostPort ?? (pod.HostNetwork == true ? p.ContainerPort : 0)))
                .Where(x => x.HostPort != 0).Select(x => $"{c.Path} host port {x.HostPort}"))),
        new(PodSecurityLevel.Baseline, "AppArmor", (meta, pod) =>
            (meta?.Annotations ?? new Dictionary<string, string>())
                .Where(a => a.Key.StartsWith("container.apparmor.security.beta.kubernetes.io/", StringComparison.Ordinal)
                            && a.Value != "runtime/default" && !a.Value.StartsWith("localhost/", StringComparison.Ordinal))
                .Select(a => $"annotation {a.Key}={a.Value}")
            .Concat(new[] { ("securityContext", pod.SecurityContext?.AppArmorProfile) }
                .Concat(Containers(pod).Select(c => (c.Path + ".securityContext", c.Context?.AppArmorProfile)))
                .Where(p => p.Item2 is { } profile && profile.Type is not ("RuntimeDefault" or "Localhost"))
                .Select(p => $"{p.Item1}.appArmorProfile.type {p.Item2!.Type}"))),
        new(PodSecurityLevel.Baseline, "SELinux", (_, pod) =>
            new[] { ("securityContext", pod.SecurityContext?.SeLinuxOptions) }
                .Concat(Containers(pod).Select(c => (c.Path + ".securityContext", c.Context?.SeLinuxOptions)))
                .Where(s => s.Item2 is { } o && (!SeLinuxTypes.Contains(o.Type ?? "") || !string.IsNullOrEmpty(o.User) || !string.IsNullOrEmpty(o.Role)))
                .Select(s => s.Item1 + ".seLinuxOptions")),
        new(PodSecurityLevel.Baseline, "/proc Mount Type", (_, pod) =>
            Containers(pod).Where(c => c.Context?.ProcMount is { } m && m != "Default").Select(c => $"{c.Path}.securityContext.procMount {c.Context!.ProcMount}")),
        new(PodSecurityLevel.Baseline, "Seccomp", (_, pod) =>
            (pod.SecurityContext?.SeccompProfile?.Type == "Unconfined" ? ["securityContext.seccompProfile Unconfined"] : Array.Empty<string>())
            .Concat(Containers(pod).Where(c => c.Context?.SeccompProfile?.Type == "Unconfined").Select(c => c.Path + ".securityContext.seccompProfile Unconfined"))),
        new(PodSecurityLevel.Baseline, "Sysctls", (_, pod) =>
            (pod.SecurityContext?.Sysctls ?? []).Where(s => !SafeSysctls.Contains(s.Name)).Select(s => $"sysctl {s.Name}")),

        new(PodSecurityLevel.Restricted, "Volume Types", (_, pod) =>
            (pod.Volumes ?? []).Select(v => (v.Name, Type: VolumeType(v))).Where(v => !RestrictedVolumes.Contains(v.Type)).Select(v => $"volume {v.Name} is {v.Type}")),
        new(PodSecurityLevel.Restricted, "Privilege Escalation", (_, pod) =>
            Containers(pod).Where(c => c.Context?.AllowPrivilegeEscalation != false).Select(c => c.Path + " does not set allowPrivilegeEscalation false")),
        new(PodSecurityLevel.Restricted, "Running as Non-root", (_, pod) =>
            Containers(pod).Where(c => (c.Context?.RunAsNonRoot ?? pod.SecurityContext?.RunAsNonRoot) != true).Select(c => c.Path + " may run as root (runAsNonRoot not true)")
            .Concat(pod.SecurityContext?.RunAsNonRoot == false ? ["securityContext.runAsNonRoot false"] : Array.Empty<string>())),
        new(PodSecurityLevel.Restricted, "Running as Non-root user", (_, pod) =>
            (pod.SecurityContext?.RunAsUser == 0 ? ["securityContext.runAsUser 0"] : Array.Empty<string>())
            .Concat(Containers(pod).Where(c => c.Context?.RunAsUser == 0).Select(c => c.Path + ".securityContext.runAsUser 0"))),
        new(PodSecurityLevel.Restricted, "Seccomp", (_, pod) =>
            Containers(pod).Select(c => (c.Path, Type: c.Context?.SeccompProfile?.Type ?? pod.SecurityContext?.SeccompProfile?.Type))
                .Where(c => c.Type is not ("RuntimeDefault" or "Localhost")).Select(c => $"{c.Path} seccomp profile {c.Type ?? "unset"}")),
        new(PodSecurityLevel.Restricted, "Capabilities", (_, pod) =>
            Containers(pod).SelectMany(c =>
                (c.Context?.Capabilities?.Drop?.Contains("ALL") == true ? Array.Empty<string>() : [c.Path + " does not drop ALL"])
                .Concat((c.Context?.Capabilities?.Add ?? []).Where(a => a != "NET_BIND_SERVICE").Select(a => $"{c.Path} adds {a}")))),
    ];

    private static string VolumeType(V1Volume v) =>
        v.ConfigMap is not null ? "configMap" : v.Csi is not null ? "csi" : v.DownwardAPI is not null ? "downwardAPI"
        : v.EmptyDir is not null ? "emptyDir" : v.Ephemeral is not null ? "ephemeral" : v.PersistentVolumeClaim is not null ? "persistentVolumeClaim"
        : v.Projected is not null ? "projected" : v.Secret is not null ? "secret" : v.HostPath is not null ? "hostPath" : "another type";

    /// <summary>Every violation of the controls <paramref name="level"/> enforces, as "control: what".</summary>
    public static IReadOnlyList<string> Violations(V1ObjectMeta? metadata, V1PodSpec pod, PodSecurityLevel level) =>
        Controls.Where(c => c.Level <= level && c.Level != PodSecurityLevel.Privileged)
            .SelectMany(c => c.Check(metadata, pod).Select(v => $"{c.Level} {c.Name}: {v}")).ToList();

    /// <summary>The level a namespace enforces, from its pod-security.kubernetes.io/enforce label (none: privileged, the admission's default).</summary>
    public static PodSecurityLevel Enforced(V1Namespace ns) =>
        ns.Metadata.Labels?.TryGetValue("pod-security.kubernetes.io/enforce", out var level) == true
            ? Enum.Parse<PodSecurityLevel>(level, ignoreCase: true) : PodSecurityLevel.Privileged;
}
