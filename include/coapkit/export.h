/* The export macro and the library's version.
 *
 * libcoapkit is built with hidden visibility: only what a public header
 * marks CK_EXPORT is visible to programs, so internal functions can change
 * without breaking anyone who links the shared library.
 */
#ifndef COAPKIT_EXPORT_H
#define COAPKIT_EXPORT_H

#if defined(CK_BUILDING_LIBRARY) && defined(__GNUC__)
#define CK_EXPORT __attribute__((visibility("default")))
#else
#define CK_EXPORT
#endif

#endif
