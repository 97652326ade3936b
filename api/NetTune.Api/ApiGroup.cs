namespace NetTune.Api;

public static class ApiGroup
{
    public const string Name = "nettune.io";
    public const string Version = "v1alpha1";
    public const string GroupVersion = Name + "/" + Version;
}
