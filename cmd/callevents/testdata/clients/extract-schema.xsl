<?xml version="1.0" encoding="UTF-8"?>
<!-- Cut the inline xsd:schema out of the WSDL, keeping its in-scope
     namespace declarations (xmllint xpath output would drop them). -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <xsl:output method="xml" encoding="UTF-8"/>
  <xsl:template match="/">
    <xsl:copy-of select="(//xsd:schema)[1]"/>
  </xsl:template>
</xsl:stylesheet>
