/* The simulated bus between hosts and `sedsim serve`: the one definition of its framing, used by
 * the Swift side (SimulatorLink) and by the preload library (plain C).
 *
 * Every message is a frame: a 4-byte big-endian length, then the body.
 * Request body:  [operation: u8][drive: u16 BE][protocol ID: u8][SP specific: u16 BE]
 *                [length: u32 BE][LBA: u64 BE][payload]
 * Response body: [status: u8][payload]
 * Raw device command payloads (operations ScsiCommand, NvmeAdminCommand, NvmeIoCommand):
 *   SCSI request  [CDB length: u8][CDB][data-out]   answer [SCSI status: u8][sense length: u8][sense][data-in]
 *   NVMe request  [64-byte submission queue entry][data-out]
 *        answer   [status: u16 BE = SCT << 8 | SC][completion dword 0: u32 BE][data-in]
 * The request's length field is the data-in allocation in bytes (block count for Read/Write). */
#ifndef SEDSIM_LINK_H
#define SEDSIM_LINK_H

#include <stdint.h>

typedef enum __attribute__((enum_extensibility(closed))) : uint8_t {
    SedsimLinkOperationIdentify = 1,
    SedsimLinkOperationSecurityProtocolOut = 2,
    SedsimLinkOperationSecurityProtocolIn = 3,
    SedsimLinkOperationRead = 4,
    SedsimLinkOperationWrite = 5,
    SedsimLinkOperationPowerCycle = 6,
    SedsimLinkOperationHardwareReset = 7,
    SedsimLinkOperationStatus = 8,
    SedsimLinkOperationSetFaults = 9,
    SedsimLinkOperationListDrives = 10,
    /* A raw SCSI command as SG_IO carries it. */
    SedsimLinkOperationScsiCommand = 11,
    /* A raw NVMe admin command. */
    SedsimLinkOperationNvmeAdminCommand = 12,
    /* A raw NVMe I/O (NVM command set) command. */
    SedsimLinkOperationNvmeIOCommand = 13,
} SedsimLinkOperation;

typedef enum __attribute__((enum_extensibility(closed))) : uint8_t {
    SedsimLinkStatusOk = 0,
    /* The request could not be carried out; the payload is a UTF-8 explanation. */
    SedsimLinkStatusFailed = 1,
    /* A read or write hit a locked range (SCSI DATA PROTECT, NVMe Access Denied). */
    SedsimLinkStatusDataProtect = 2,
    SedsimLinkStatusNoSuchDrive = 3,
    SedsimLinkStatusIllegalRequest = 4,
} SedsimLinkStatus;

enum {
    SEDSIM_LINK_LENGTH_PREFIX = 4,
    SEDSIM_LINK_REQUEST_HEADER = 18,
    SEDSIM_LINK_OFFSET_OPERATION = 0,
    SEDSIM_LINK_OFFSET_DRIVE = 1,
    SEDSIM_LINK_OFFSET_PROTOCOL = 3,
    SEDSIM_LINK_OFFSET_SP_SPECIFIC = 4,
    SEDSIM_LINK_OFFSET_LENGTH = 6,
    SEDSIM_LINK_OFFSET_LBA = 10,
    /* Largest body either side accepts: a 16 MiB media transfer plus headers. */
    SEDSIM_LINK_MAX_FRAME = (16 << 20) + 64,
    SEDSIM_LINK_NVME_ENTRY_SIZE = 64,
};

/* The socket `sedsim serve` listens on, inside the array directory. */
#define SEDSIM_LINK_SOCKET_NAME "sedsim.sock"

#endif
