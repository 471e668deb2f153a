/* Error codes returned by smpmem configuration calls (negative, errno-like). */
#ifndef SMPMEM_ERRORS_H
#define SMPMEM_ERRORS_H

#define SMP_EIO     (-5)   /* a block device failed */
#define SMP_ENOMEM  (-12)  /* no memory for the request */
#define SMP_EBUSY   (-16)  /* already initialised / in use */
#define SMP_EINVAL  (-22)  /* bad argument (NULL, empty, out of range) */
#define SMP_ERANGE  (-34)  /* region too small or too large */
#define SMP_ENODEV  (-19)  /* no such device */

#endif
