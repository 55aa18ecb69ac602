/* SPDX-License-Identifier: MIT */
/*
 * rd_container.h - which container, and which Kubernetes pod, a process
 * runs in, from the cgroup paths of /proc/<pid>/cgroup: the OpenTelemetry
 * resource attributes container.id and k8s.pod.uid.  Each runtime names a
 * container's cgroup after its 64-hex-digit id:
 *   docker        /docker/<id>, /system.slice/docker-<id>.scope
 *   containerd    /kubepods/<qos>/pod<uid>/<id>,
 *   (CRI)         .../kubepods-<qos>-pod<uid>.slice/cri-containerd-<id>.scope
 *   CRI-O         .../kubepods-<qos>-pod<uid>.slice/crio-<id>.scope
 *   podman        /machine.slice/libpod-<id>.scope[/container],
 *                 /libpod_parent/libpod-<id>, .../user@1000.service/.../libpod-<id>.scope
 * The pod's uid is in the kubepods part: with dashes under cgroupfs,
 * underscores under systemd's naming.  The runtimes' monitor processes
 * (crio-conmon-<id>, libpod-conmon-<id>) are not the container.
 */
#ifndef RD_CONTAINER_H
#define RD_CONTAINER_H

struct rd_container {
	char id[65];      /* container.id: "" when not in a container */
	char pod_uid[37]; /* k8s.pod.uid: "" when not in a pod */
};

/* Parses the text of /proc/<pid>/cgroup (v2 "0::path", v1
 * "N:controllers:path" lines; the v2 line first, then the v1 ones) into
 * out, which is cleared first.  Returns 1 when it found a container or a
 * pod, 0 when not. */
int rd_container_parse(const char *cgroup_text, struct rd_container *out);

#endif /* RD_CONTAINER_H */
