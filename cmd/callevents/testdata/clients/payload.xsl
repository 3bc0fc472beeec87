<?xml version="1.0" encoding="UTF-8"?>
<!-- The element of a SOAP 1.1 or 1.2 response that the WSDL schema
     describes: the body's first child, or for a fault the first child of
     its detail (serviceFault). Namespace-agnostic on the envelope. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="xml" encoding="UTF-8"/>
  <xsl:template match="/">
    <xsl:variable name="first" select="/*[local-name()='Envelope']/*[local-name()='Body']/*[1]"/>
    <xsl:choose>
      <xsl:when test="local-name($first)='Fault'">
        <xsl:copy-of select="$first/*[local-name()='detail' or local-name()='Detail']/*[1]"/>
      </xsl:when>
      <xsl:otherwise>
        <xsl:copy-of select="$first"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
