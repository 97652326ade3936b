using System.Globalization;
using Grpc.Core;
using NetTune.Agent.Core.DevicePlugin;
using NetTune.Agent.DevicePlugin.V1Beta1;

namespace NetTune.Agent.DevicePlugin;

/// <summary>
/// The kubelet's side of one NUMA resource: its devices (each naming its NUMA node in TopologyInfo, which is what the
/// Topology Manager aligns the pod's CPUs with), a preference among them, and allocations, which hand the container
/// nothing but the NUMA node's number.
/// </summary>
public sealed class NumaDevicePluginService(ConnectionResources connections, IHostApplicationLifetime lifetime, ILogger<NumaDevicePluginService> log)
    : V1Beta1.DevicePlugin.DevicePluginBase
{
    public static readonly DevicePluginOptions Options = new() { GetPreferredAllocationAvailable = true };

    private NumaResource Resource(ServerCallContext context) =>
        connections.Of(context.GetHttpContext().Connection.Id)
        ?? throw new RpcException(new Status(StatusCode.FailedPrecondition, "the connection came in on no known socket"));

    public override Task<DevicePluginOptions> GetDevicePluginOptions(Empty request, ServerCallContext context) => Task.FromResult(Options);

    public override async Task ListAndWatch(Empty request, IServerStreamWriter<ListAndWatchResponse> responseStream, ServerCallContext context)
    {
        var resource = Resource(context);
        var response = new ListAndWatchResponse();
        foreach (var device in resource.Devices)
            response.Devices.Add(new Device
            {
                ID = device.Id,
                Health = NumaDevicePlan.Healthy,
                Topology = new TopologyInfo { Nodes = { new NUMANode { ID = device.NumaNode } } },
            });
        await responseStream.WriteAsync(response);
        log.LogInformation("the kubelet watches {Resource}: {Count} devices on NUMA node {Numa}", resource.ResourceName, resource.Devices.Count, resource.NumaNode);
        // The devices never change: the stream stays open until the kubelet goes or the plugin stops, as the kubelet
        // takes a closed stream for a plugin that is gone.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        try { await Task.Delay(Timeout.Infinite, stop.Token); }
        catch (OperationCanceledException) { }
    }

    public override Task<PreferredAllocationResponse> GetPreferredAllocation(PreferredAllocationRequest request, ServerCallContext context)
    {
        var resource = Resource(context);
        var response = new PreferredAllocationResponse();
        foreach (var container in request.ContainerRequests)
            response.ContainerResponses.Add(new ContainerPreferredAllocationResponse
            {
                DeviceIDs = { NumaDevicePlan.Preferred(resource, container.AvailableDeviceIDs, container.MustIncludeDeviceIDs, container.AllocationSize) },
            });
        return Task.FromResult(response);
    }

    public override Task<AllocateResponse> Allocate(AllocateRequest request, ServerCallContext context)
    {
        var resource = Resource(context);
        var response = new AllocateResponse();
        foreach (var container in request.ContainerRequests)
        {
            if (NumaDevicePlan.AllocationRefusal(resource, container.DevicesIDs) is { } refusal)
                throw new RpcException(new Status(StatusCode.InvalidArgument, refusal));
            response.ContainerResponses.Add(new ContainerAllocateResponse
            {
                Envs = { [NumaDevicePlan.NumaNodeVariable] = resource.NumaNode.ToString(CultureInfo.InvariantCulture) },
            });
        }
        return Task.FromResult(response);
    }

    public override Task<PreStartContainerResponse> PreStartContainer(PreStartContainerRequest request, ServerCallContext context) =>
        Task.FromResult(new PreStartContainerResponse());
}
