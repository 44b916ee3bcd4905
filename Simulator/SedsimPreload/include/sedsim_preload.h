/* sedsim preload library: makes drives of a `sedsim serve` array appear as device nodes.
 *
 * Load it with LD_PRELOAD and map paths to drives with SEDSIM_DEVICES, a comma-separated list of
 * PATH=ARRAY_DIR/N entries (an optional "sim:" prefix on the right is accepted), for example
 *   SEDSIM_DEVICES=/dev/sg100=/tmp/array/0,/dev/nvme100=/tmp/array/1
 * The node type follows the path's name, as on a real system: /dev/sgN is a SCSI generic character
 * device, /dev/nvmeN an NVMe controller character device, /dev/nvmeNnM an NVMe namespace block
 * device, anything else a SCSI disk block device. SEDSIM_PRELOAD_DEBUG=1 traces intercepted calls
 * (commands and results, never data) on standard error. */
#ifndef SEDSIM_PRELOAD_H
#define SEDSIM_PRELOAD_H

/* The number of mapped paths (for tests and diagnostics). */
int sedsim_preload_mapping_count(void);

#endif
